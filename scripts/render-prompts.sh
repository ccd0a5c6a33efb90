#!/usr/bin/env bash
# Render hotline's IVR voice prompts with espeak-ng + sox.
#
# Usage: scripts/render-prompts.sh [OUTPUT_DIR]
#
#   OUTPUT_DIR defaults to <repo>/prompts. Writes
#     OUTPUT_DIR/<lang>/<name>.wav   for lang in zh, en
#     OUTPUT_DIR/beep.wav
#   Every file is WAV, 8000 Hz, mono, 16-bit signed PCM.
#
# Idempotent: re-running overwrites the files with identical output
# (sox runs in repeatable mode, -R, so dither is deterministic).
#
# Environment overrides:
#   ZH_VOICE   espeak-ng voice for Mandarin (default: auto-detected, see below)
#   EN_VOICE   espeak-ng voice for English  (default: en-us)
#   ZH_SPEED   espeak-ng words-per-minute for zh (default: 175)
#   EN_SPEED   espeak-ng words-per-minute for en (default: 165)
set -euo pipefail

die() { echo "render-prompts: error: $*" >&2; exit 1; }

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null 2>&1 \
        || die "'$tool' not found in PATH. Install it (Debian/Ubuntu: apt-get install espeak-ng sox)."
done

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
out_dir="${1:-$repo_root/prompts}"

EN_VOICE="${EN_VOICE:-en-us}"
EN_SPEED="${EN_SPEED:-165}"
ZH_SPEED="${ZH_SPEED:-175}"

# Mandarin voice selection.
# In espeak-ng 1.51 the plain `cmn` voice ("latin as English") is broken for
# Han characters: cmn_dict maps them to tone-numbered pinyin ("nin2 hao3") and
# the voice then reads that with English rules ("nin two hao three").
# `cmn-latn-pinyin` pronounces the same text correctly. Pick the first
# candidate whose phoneme output does not switch to English.
voice_ok() {
    local voice="$1" ph
    ph="$(espeak-ng -q -x -v "$voice" "您好" 2>/dev/null)" || return 1
    [[ -n "$ph" && "$ph" != *"(en)"* ]]
}
if [[ -z "${ZH_VOICE:-}" ]]; then
    for v in cmn-latn-pinyin cmn zh; do
        if voice_ok "$v"; then ZH_VOICE="$v"; break; fi
    done
    [[ -n "${ZH_VOICE:-}" ]] \
        || die "no working Mandarin espeak-ng voice (tried cmn-latn-pinyin, cmn, zh); see 'espeak-ng --voices=zh' and set ZH_VOICE"
fi
voice_ok "$EN_VOICE" || die "espeak-ng voice '$EN_VOICE' not available; see 'espeak-ng --voices=en' and set EN_VOICE"

# name | zh text | en text
PROMPTS=(
    "greeting|您好，欢迎致电热线服务中心，请讲。|Hello, welcome to the hotline service centre. How can we help you?"
    "silent_question|请问有什么可以帮助您？|Hello? How can I help you?"
    "silent_apology|对不起，您的电话没有声音，请您换一部电话再次打来好吗？感谢，再见！|Sorry, we cannot hear you. Please call again from another phone. Thank you, goodbye!"
    "please_hold|请稍候，正在为您转接。|Please hold while we connect you."
    "sorry_wait|对不起，让您久等了。|Sorry to have kept you waiting."
    "goodbye|感谢您的来电，再见！|Thank you for calling. Goodbye!"
)

# Output format: 8 kHz, mono, 16-bit signed PCM WAV.
FMT=(-r 8000 -c 1 -b 16 -e signed-integer)

tmp_dir="$(mktemp -d)"
trap 'rm -rf "$tmp_dir"' EXIT

mkdir -p "$out_dir/zh" "$out_dir/en"

# render <voice> <speed> <text> <dest.wav>
render() {
    local voice="$1" speed="$2" text="$3" dest="$4"
    local raw="$tmp_dir/raw.wav" tmp="$tmp_dir/out.wav"
    espeak-ng -v "$voice" -s "$speed" -w "$raw" -- "$text"
    # Trim leading/trailing silence espeak adds (silence / reverse / silence /
    # reverse), normalise to -3 dBFS, then pad 50 ms lead-in and 100 ms tail.
    # The rate change to 8 kHz (with anti-alias filtering) is applied by sox
    # automatically from the output format options.
    sox -R "$raw" "${FMT[@]}" "$tmp" \
        silence 1 0.01 -50d \
        reverse silence 1 0.01 -50d reverse \
        norm -3 \
        pad 0.05 0.1
    mv -f "$tmp" "$dest"
}

for entry in "${PROMPTS[@]}"; do
    IFS='|' read -r name zh en <<<"$entry"
    render "$ZH_VOICE" "$ZH_SPEED" "$zh" "$out_dir/zh/$name.wav"
    render "$EN_VOICE" "$EN_SPEED" "$en" "$out_dir/en/$name.wav"
    echo "rendered $name (zh: $ZH_VOICE, en: $EN_VOICE)"
done

# Beep: 1000 Hz sine, 300 ms, half amplitude, 10 ms fades to avoid clicks.
sox -R -n "${FMT[@]}" "$tmp_dir/beep.wav" synth 0.3 sine 1000 vol 0.5 fade h 0.01 0.3 0.01
mv -f "$tmp_dir/beep.wav" "$out_dir/beep.wav"
echo "rendered beep"

echo "prompts written to $out_dir"
