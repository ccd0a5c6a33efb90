#!/usr/bin/env bash
# Render hotline's IVR voice prompts with espeak-ng + sox.
#
# Usage: scripts/render-prompts.sh [OUTPUT_DIR]
#
#   OUTPUT_DIR defaults to <repo>/prompts. Writes
#     OUTPUT_DIR/<lang>/<name>.wav       for lang in zh, en
#     OUTPUT_DIR/<lang>/digits/<d>.wav   d = 0..9, tightly trimmed
#     OUTPUT_DIR/beep.wav, OUTPUT_DIR/pause.wav
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
    "main_menu|咨询请按1，报修请按2，投诉请按3，留言请按9。|For enquiries press 1, for repairs press 2, for complaints press 3, to leave a message press 9."
    "invalid_choice|您的输入有误，请重新输入。|Sorry, that is not a valid choice. Please try again."
    "no_input|您没有输入，请重新选择。|We did not receive your choice. Please try again."
    "leave_message|请在提示音后留言，留言完毕请按井号键。|Please leave your message after the tone, and press the hash key when you have finished."
    "message_saved|您的留言已保存，我们会尽快给您回电。感谢您的来电，再见！|Your message has been saved and we will call you back soon. Thank you for calling, goodbye!"
    "no_agents|对不起，现在没有客服人员可以接听您的电话。|Sorry, no agent is available to take your call right now."
    "night_closed|您好，现在是非工作时间，我们的服务时间是每天早上八点至晚上八点。|Hello, our service hours are eight a.m. to eight p.m. every day. We are closed now."
    "enter_account|请输入您的户号，以井号键结束。|Please enter your account number, followed by the hash key."
    "account_received|您的户号已收到。|Thank you, we have your account number."
    "consultation|咨询业务。|Enquiries."
    "repair|报修业务。|Repairs."
    "complaint|投诉业务。|Complaints."
    "agent_logged_in|签入成功，您现在可以接听电话。|You are logged in and ready for calls."
    "agent_logged_out|签出成功。|You are logged out."
    "agent_on_break|您已进入小休状态。|You are on a break."
    "agent_unknown|对不起，此功能仅供客服人员使用。|Sorry, this feature is for agents only."
    "queue_ahead|您前面还有|There are"
    "queue_waiting|位客户在等待，请耐心等候。|callers ahead of you. Please hold."
    "queue_wait_about|预计等待时间约|Your expected wait is about"
    "queue_minutes|分钟。|minutes."
    "agent_intro|工号|Agent number"
    "agent_serving|为您服务。|is now serving you."
    "hold_start|请您稍等，不要挂机。|Please hold the line, we will be right back."
    "transfer_to|正在为您转接，分机号|We are transferring you to extension"
    "transfer_failed|对不起，转接没有成功。|Sorry, the transfer did not go through."
    "recording_notice|您的通话可能会被录音。|Your call may be recorded."
    "survey|请对本次服务进行评价：非常满意请按1，满意请按2，一般请按3，不满意请按4，非常不满意请按5。|Please rate our service: very satisfied press 1, satisfied 2, neutral 3, dissatisfied 4, very dissatisfied 5."
    "survey_thanks|感谢您的评价，再见！|Thank you for your rating. Goodbye!"
    "notice_example|这是一条服务通知：明天上午九点到十二点，您所在的小区将暂停供气。确认收到请按1，重听请按2，不再接收此类通知请按9。|This is a service notice. Tomorrow from nine a.m. to twelve noon, the gas supply to your area will be suspended. To confirm, press 1. To hear this again, press 2. To stop receiving notices like this, press 9."
    "callback_offer|如需回电并保留您的排队位置，请按1。|To be called back and keep your place in the queue, press 1."
    "callback_number_is|您的回电号码是|We will call you back on"
    "callback_confirm|确认请按1，更改号码请输入新号码并以井号键结束。|Press 1 to confirm, or key another number followed by the hash key."
    "callback_enter_number|请输入回电号码，并以井号键结束。|Please key the number to call you back on, followed by the hash key."
    "callback_booked|好的，我们将按您的排队顺序给您回电，请挂机。|Thank you. We will call you back in your turn. Please hang up."
    "callback_intro|您好，这里是热线服务中心，您预约的回电，正在为您接通客服。|Hello, this is the hotline returning your call. Connecting you to an agent."
    "task_callback|回电任务，客户号码|Callback for"
    "task_message|留言回复，客户号码|Message to return, number"
    "task_follow_up|回访任务，客户号码|Follow-up call, number"
    "task_complaint|投诉回复，客户号码|Complaint reply, number"
    "repeat_caller|该客户近期来电过|This caller called recently"
    "task_outcome_saved|回访结果已记录|Outcome saved"
)

# Mixed-language prompts: name | lang:text | lang:text ...
# Each segment is spoken by its own language's voice; the segments are joined
# with a short pause and the same file is written to every language directory.
MIXED_PROMPTS=(
    "choose_language|zh:普通话请按1，|en:For English, press 2."
)
MIXED_GAP=0.3   # seconds of silence between segments

# Digits 0..9 for assembling announcements (agent numbers etc.). Rendered with
# no lead-in and a 20 ms tail so they can be concatenated directly. Mandarin
# reads 1 as 幺 (yāo), as is usual when reading out phone/agent numbers.
DIGITS_ZH=(零 幺 二 三 四 五 六 七 八 九)
DIGITS_EN=(zero one two three four five six seven eight nine)

# Mandarin pronunciation fixes: "word|espeak-ng input". Applied to the zh text
# only when it is handed to espeak-ng; the texts above (and in
# prompts/README.md) stay as written. [[...]] is espeak-ng phoneme input
# (cmn phoneme names, as printed by `espeak-ng -x -v cmn-latn-pinyin`).
# Errors in espeak-ng 1.51's cmn_dict:
#   重新  read zhòng xīn ("heavy"); should be chóng xīn
#   投诉  诉 has no tone in cmn_dict (spoken as a neutral "tóu su"); should be sù
#   业务  务 likewise toneless ("yè wu"); should be wù
#   服务通知  务 toneless again (only this phrase is fixed: see below)
#   重听  read zhòng tīng; should be chóng tīng ("hear again")
#   不再  不 keeps its 4th tone before a 4th tone; should be bú
#   任务  务 toneless ("rèn wu"); should be rèn wù
#   更改  read gèng gǎi; should be gēng gǎi
# 服务 on its own is deliberately not fixed, so `greeting` (热线服务中心)
# stays as previously rendered and `night_closed` matches it.
ZH_FIXES=(
    "重新|[[ts.h'ong35]]新"
    "投诉|投[[s'u51]]"
    "业务|业[[w'u51]]"
    "服务通知|服[[w'u51]]通知"
    "重听|[[ts.h'ong35]]听"
    "不再|[[p'u35]]再"
    "任务|任[[w'u51]]"
    "更改|[[k'@55N]]改"
)
zh_spoken() {
    local text="$1" fix from to
    for fix in "${ZH_FIXES[@]}"; do
        from="${fix%%|*}" to="${fix#*|}"
        text="${text//"$from"/"$to"}"
    done
    printf '%s' "$text"
}

# Output format: 8 kHz, mono, 16-bit signed PCM WAV.
FMT=(-r 8000 -c 1 -b 16 -e signed-integer)

tmp_dir="$(mktemp -d)"
trap 'rm -rf "$tmp_dir"' EXIT

mkdir -p "$out_dir/zh/digits" "$out_dir/en/digits"

# render <voice> <speed> <text> <dest.wav> [lead_s] [tail_s]
render() {
    local voice="$1" speed="$2" text="$3" dest="$4" lead="${5:-0.05}" tail="${6:-0.1}"
    local raw="$tmp_dir/raw.wav" tmp="$tmp_dir/out.wav"
    espeak-ng -v "$voice" -s "$speed" -w "$raw" -- "$text"
    # Trim leading/trailing silence espeak adds (silence / reverse / silence /
    # reverse), normalise to -3 dBFS, then pad the lead-in and tail (default
    # 50 ms / 100 ms). The rate change to 8 kHz (with anti-alias filtering)
    # is applied by sox automatically from the output format options.
    sox -R "$raw" "${FMT[@]}" "$tmp" \
        silence 1 0.01 -50d \
        reverse silence 1 0.01 -50d reverse \
        norm -3 \
        pad "$lead" "$tail"
    mv -f "$tmp" "$dest"
}

for entry in "${PROMPTS[@]}"; do
    IFS='|' read -r name zh en <<<"$entry"
    render "$ZH_VOICE" "$ZH_SPEED" "$(zh_spoken "$zh")" "$out_dir/zh/$name.wav"
    render "$EN_VOICE" "$EN_SPEED" "$en" "$out_dir/en/$name.wav"
    echo "rendered $name (zh: $ZH_VOICE, en: $EN_VOICE)"
done

# Mixed-language prompts: each segment is rendered like a prompt but without
# padding (trimmed, normalised to -3 dBFS, 8 kHz), then the segments are
# joined with MIXED_GAP of silence and padded 50 ms / 100 ms as a whole.
sox -R -n "${FMT[@]}" "$tmp_dir/gap.wav" trim 0 "$MIXED_GAP"
for entry in "${MIXED_PROMPTS[@]}"; do
    IFS='|' read -r -a fields <<<"$entry"
    name="${fields[0]}"
    parts=() voices=()
    for ((i = 1; i < ${#fields[@]}; i++)); do
        lang="${fields[i]%%:*}" text="${fields[i]#*:}"
        case "$lang" in
            zh) voice="$ZH_VOICE" speed="$ZH_SPEED" text="$(zh_spoken "$text")" ;;
            en) voice="$EN_VOICE" speed="$EN_SPEED" ;;
            *) die "mixed prompt '$name': unknown language '$lang'" ;;
        esac
        seg="$tmp_dir/seg$i.wav"
        render "$voice" "$speed" "$text" "$seg" 0 0
        if ((i > 1)); then parts+=("$tmp_dir/gap.wav"); fi
        parts+=("$seg")
        voices+=("$lang: $voice")
    done
    sox -R "${parts[@]}" "${FMT[@]}" "$tmp_dir/mixed.wav" pad 0.05 0.1
    cp -f "$tmp_dir/mixed.wav" "$out_dir/zh/$name.wav"
    mv -f "$tmp_dir/mixed.wav" "$out_dir/en/$name.wav"
    echo "rendered $name (mixed; $(printf '%s; ' "${voices[@]}" | sed 's/; $//'))"
done

# Digits: no lead-in, 20 ms tail.
for d in 0 1 2 3 4 5 6 7 8 9; do
    render "$ZH_VOICE" "$ZH_SPEED" "$(zh_spoken "${DIGITS_ZH[d]}")" "$out_dir/zh/digits/$d.wav" 0 0.02
    render "$EN_VOICE" "$EN_SPEED" "${DIGITS_EN[d]}" "$out_dir/en/digits/$d.wav" 0 0.02
done
echo "rendered digits 0-9 (zh: ${DIGITS_ZH[*]}; en: ${DIGITS_EN[*]})"

# Beep: 1000 Hz sine, 300 ms, half amplitude, 10 ms fades to avoid clicks.
sox -R -n "${FMT[@]}" "$tmp_dir/beep.wav" synth 0.3 sine 1000 vol 0.5 fade h 0.01 0.3 0.01
mv -f "$tmp_dir/beep.wav" "$out_dir/beep.wav"
echo "rendered beep"

# Pause: 400 ms of digital silence, played between the digit groups when a
# number is read back (138 0013 8000). Language independent, like the beep.
sox -R -n "${FMT[@]}" "$tmp_dir/pause.wav" trim 0 0.4
mv -f "$tmp_dir/pause.wav" "$out_dir/pause.wav"
echo "rendered pause"

# Music on hold for queued callers: four soft chords, looped by the engine.
sox -R -n "${FMT[@]}" "$tmp_dir/moh.wav" \
  synth 2 sine 392 sine 494 sine 587 : synth 2 sine 349 sine 440 sine 523 : \
  synth 2 sine 330 sine 392 sine 494 : synth 2 sine 349 sine 440 sine 587 \
  remix - fade 0.05 8 0.05 vol 0.35 trim 0 8
mv -f "$tmp_dir/moh.wav" "$out_dir/moh.wav"
echo "rendered moh"

echo "prompts written to $out_dir"
