//! A work order's own fields: the customer's name and address, and for a
//! repair notice the fault, for a complaint order its subject. They are
//! kept on the task the order became ([`Task::order`](super::Task)),
//! checked field by field (a bad one is named), and only ever leave the
//! engine as JSON: never in a SIP message, a file name or a log line.
//!
//! Every text is one line of at most a few hundred characters, with no
//! control characters and none of the bidirectional overrides that make
//! text read other than it is.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::TaskKind;
use crate::campaign::spec::SpecError;

/// Longest customer name.
pub const MAX_NAME_CHARS: usize = 50;
/// Longest address.
pub const MAX_ADDRESS_CHARS: usize = 200;
/// Longest fault description and complaint subject.
pub const MAX_TEXT_CHARS: usize = 200;

/// The fields an order may have, for "unknown field" messages.
pub const ORDER_FIELDS: [&str; 5] = [
    "customer_name",
    "address",
    "fault",
    "fault_detail",
    "subject",
];

/// A work order the agent makes from a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// A repair notice (客户维修通知单): a follow-up call after the repair.
    Repair,
    /// A complaint order (投诉单): a reply owed by its deadline.
    Complaint,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Repair => "repair",
            OrderKind::Complaint => "complaint",
        }
    }

    pub fn parse(text: &str) -> Option<OrderKind> {
        match text {
            "repair" => Some(OrderKind::Repair),
            "complaint" => Some(OrderKind::Complaint),
            _ => None,
        }
    }

    /// The task an order of this kind becomes.
    pub fn task_kind(self) -> TaskKind {
        match self {
            OrderKind::Repair => TaskKind::FollowUp,
            OrderKind::Complaint => TaskKind::Complaint,
        }
    }

    /// The order kind a task of `kind` may carry: a follow-up is a
    /// repair's, a complaint a complaint's; callbacks and messages carry
    /// none.
    pub fn of_task(kind: TaskKind) -> Option<OrderKind> {
        match kind {
            TaskKind::FollowUp => Some(OrderKind::Repair),
            TaskKind::Complaint => Some(OrderKind::Complaint),
            TaskKind::Callback | TaskKind::Message => None,
        }
    }

    /// The deadline when the order names none: a follow-up within a week
    /// of the repair, a complaint answered within 24 h.
    pub fn default_due(self) -> std::time::Duration {
        match self {
            OrderKind::Repair => std::time::Duration::from_secs(7 * 86_400),
            OrderKind::Complaint => std::time::Duration::from_secs(86_400),
        }
    }
}

/// What is wrong, on a repair notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultType {
    /// No power, no ignition (不通电).
    NoPower,
    /// A leak: gas, water (泄漏).
    Leak,
    /// A strange noise (异响).
    Noise,
    /// Something else: `fault_detail` says what (其他).
    Other,
}

pub const FAULT_TYPES: [FaultType; 4] = [
    FaultType::NoPower,
    FaultType::Leak,
    FaultType::Noise,
    FaultType::Other,
];

impl FaultType {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultType::NoPower => "no_power",
            FaultType::Leak => "leak",
            FaultType::Noise => "noise",
            FaultType::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<FaultType> {
        FAULT_TYPES.into_iter().find(|f| f.as_str() == text)
    }
}

/// A work order's fields, as kept on its task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub kind: OrderKind,
    pub customer_name: String,
    /// Required on a repair notice (where the repair is); may be empty on
    /// a complaint.
    #[serde(default)]
    pub address: String,
    /// A repair's fault.
    #[serde(default)]
    pub fault: Option<FaultType>,
    /// A repair's fault in words (required when `fault` is `other`).
    #[serde(default)]
    pub fault_detail: Option<String>,
    /// A complaint's subject.
    #[serde(default)]
    pub subject: Option<String>,
}

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// One line of text: trimmed; no control characters (line breaks
/// included) and no bidirectional overrides; at most `max` characters.
/// `None` when empty.
pub fn one_line(field: &str, text: &str, max: usize) -> Result<Option<String>, SpecError> {
    let text = text.trim();
    for (i, c) in text.chars().enumerate() {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            return Err(err(
                field,
                format!(
                    "character {} is a control character (U+{:04X}): one line of text only",
                    i + 1,
                    c as u32
                ),
            ));
        }
    }
    let n = text.chars().count();
    if n > max {
        return Err(err(
            field,
            format!("at most {max} characters (this has {n})"),
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

impl WorkOrder {
    /// Reads an order of `kind` from the fields of `obj` named as in
    /// [`ORDER_FIELDS`]; an error names the field with `prefix` before it
    /// (`"order."` when the fields are nested). Fields that do not belong
    /// to the kind (a complaint's `fault`) are refused, named.
    pub fn parse(
        kind: OrderKind,
        obj: &Map<String, Value>,
        prefix: &str,
    ) -> Result<WorkOrder, SpecError> {
        let name = |f: &str| format!("{prefix}{f}");
        let text = |f: &str, max: usize| -> Result<Option<String>, SpecError> {
            match obj.get(f) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => one_line(&name(f), s, max),
                Some(_) => Err(err(&name(f), "expected a string")),
            }
        };
        let customer_name = text("customer_name", MAX_NAME_CHARS)?
            .ok_or_else(|| err(&name("customer_name"), "required: the customer's name"))?;
        let address = text("address", MAX_ADDRESS_CHARS)?;
        let fault_text = text("fault", 32)?;
        let fault_detail = text("fault_detail", MAX_TEXT_CHARS)?;
        let subject = text("subject", MAX_TEXT_CHARS)?;
        let faults: Vec<&str> = FAULT_TYPES.iter().map(|f| f.as_str()).collect();
        match kind {
            OrderKind::Repair => {
                let address = address.ok_or_else(|| {
                    err(&name("address"), "required: where the repair is to be made")
                })?;
                let fault = match fault_text {
                    None => {
                        return Err(err(
                            &name("fault"),
                            format!("required: one of {}", faults.join(", ")),
                        ))
                    }
                    Some(f) => FaultType::parse(&f).ok_or_else(|| {
                        err(
                            &name("fault"),
                            format!("{f:?} is not one of {}", faults.join(", ")),
                        )
                    })?,
                };
                if fault == FaultType::Other && fault_detail.is_none() {
                    return Err(err(
                        &name("fault_detail"),
                        "required when the fault is \"other\": say what is wrong",
                    ));
                }
                if subject.is_some() {
                    return Err(err(
                        &name("subject"),
                        "a repair notice has no subject (that is a complaint's)",
                    ));
                }
                Ok(WorkOrder {
                    kind,
                    customer_name,
                    address,
                    fault: Some(fault),
                    fault_detail,
                    subject: None,
                })
            }
            OrderKind::Complaint => {
                if fault_text.is_some() || fault_detail.is_some() {
                    let field = if fault_text.is_some() {
                        "fault"
                    } else {
                        "fault_detail"
                    };
                    return Err(err(
                        &name(field),
                        "a complaint order has no fault (that is a repair's)",
                    ));
                }
                let subject = subject.ok_or_else(|| {
                    err(&name("subject"), "required: what the complaint is about")
                })?;
                Ok(WorkOrder {
                    kind,
                    customer_name,
                    address: address.unwrap_or_default(),
                    fault: None,
                    fault_detail: None,
                    subject: Some(subject),
                })
            }
        }
    }

    /// The order's fields as a JSON object (as [`parse`](Self::parse)
    /// reads them), to merge a change into.
    pub fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("customer_name".into(), self.customer_name.clone().into());
        if !self.address.is_empty() {
            m.insert("address".into(), self.address.clone().into());
        }
        if let Some(f) = self.fault {
            m.insert("fault".into(), f.as_str().into());
        }
        if let Some(d) = &self.fault_detail {
            m.insert("fault_detail".into(), d.clone().into());
        }
        if let Some(s) = &self.subject {
            m.insert("subject".into(), s.clone().into());
        }
        m
    }

    /// `self` (or no order yet) with the fields in `change` set (a null
    /// clears one), checked whole again as an order of `kind`.
    pub fn merged(
        current: Option<&WorkOrder>,
        kind: OrderKind,
        change: &Map<String, Value>,
        prefix: &str,
    ) -> Result<WorkOrder, SpecError> {
        let mut fields = current.map(WorkOrder::fields).unwrap_or_default();
        for (k, v) in change {
            if v.is_null() {
                fields.remove(k);
            } else {
                fields.insert(k.clone(), v.clone());
            }
        }
        WorkOrder::parse(kind, &fields, prefix)
    }
}

/// Refuses a field of `obj` not in [`ORDER_FIELDS`] (nor in `others`),
/// naming it with `prefix`.
pub fn refuse_unknown(
    obj: &Map<String, Value>,
    others: &[&str],
    prefix: &str,
) -> Result<(), SpecError> {
    match obj
        .keys()
        .find(|k| !ORDER_FIELDS.contains(&k.as_str()) && !others.contains(&k.as_str()))
    {
        Some(unknown) => Err(err(&format!("{prefix}{unknown}"), "unknown field")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_repair_notice_needs_a_name_an_address_and_a_fault() {
        let o = WorkOrder::parse(
            OrderKind::Repair,
            &obj(
                json!({"customer_name": " 王先生 ", "address": "朝阳区建国路 88 号 3 单元 501",
                        "fault": "leak", "fault_detail": "燃气表接口漏气"}),
            ),
            "",
        )
        .expect("valid");
        assert_eq!(o.customer_name, "王先生", "trimmed");
        assert_eq!(o.fault, Some(FaultType::Leak));
        assert_eq!(o.fault_detail.as_deref(), Some("燃气表接口漏气"));
        let field = |v: Value| {
            WorkOrder::parse(OrderKind::Repair, &obj(v), "order.")
                .expect_err("invalid")
                .field
        };
        assert_eq!(
            field(json!({"address": "x", "fault": "leak"})),
            "order.customer_name"
        );
        assert_eq!(
            field(json!({"customer_name": "王", "fault": "leak"})),
            "order.address"
        );
        assert_eq!(
            field(json!({"customer_name": "王", "address": "x", "fault": "fire"})),
            "order.fault"
        );
        assert_eq!(
            field(json!({"customer_name": "王", "address": "x", "fault": "other"})),
            "order.fault_detail",
            "\"other\" says what"
        );
        assert_eq!(
            field(json!({"customer_name": "王", "address": "x", "fault": "leak", "subject": "s"})),
            "order.subject"
        );
        assert_eq!(
            field(json!({"customer_name": "x".repeat(51), "address": "x", "fault": "leak"})),
            "order.customer_name"
        );
        assert_eq!(
            field(json!({"customer_name": 7, "address": "x", "fault": "leak"})),
            "order.customer_name"
        );
    }

    #[test]
    fn no_line_break_or_control_character_gets_in() {
        for bad in [
            "王先生\r\nX-Injected: 1",
            "a\u{0}b",
            "tab\there",
            "\u{202E}evil",
        ] {
            let e = WorkOrder::parse(
                OrderKind::Complaint,
                &obj(json!({"customer_name": bad, "subject": "服务态度"})),
                "",
            )
            .expect_err(bad);
            assert_eq!(e.field, "customer_name", "{bad:?}");
        }
        let e = WorkOrder::parse(
            OrderKind::Complaint,
            &obj(json!({"customer_name": "李", "subject": "维修\n超时"})),
            "",
        )
        .expect_err("a line break");
        assert_eq!(e.field, "subject");
    }

    #[test]
    fn a_complaint_needs_a_subject_and_no_fault() {
        let o = WorkOrder::parse(
            OrderKind::Complaint,
            &obj(json!({"customer_name": "李女士", "subject": "维修人员迟到三小时"})),
            "",
        )
        .expect("valid");
        assert_eq!(o.address, "", "an address is optional");
        assert_eq!(o.subject.as_deref(), Some("维修人员迟到三小时"));
        let e = WorkOrder::parse(
            OrderKind::Complaint,
            &obj(json!({"customer_name": "李女士", "subject": "s", "fault": "leak"})),
            "",
        )
        .expect_err("no fault");
        assert_eq!(e.field, "fault");
        let e = WorkOrder::parse(
            OrderKind::Complaint,
            &obj(json!({"customer_name": "李女士", "subject": "  "})),
            "",
        )
        .expect_err("blank");
        assert_eq!(e.field, "subject");
    }

    #[test]
    fn a_change_is_merged_and_checked_whole() {
        let o = WorkOrder::parse(
            OrderKind::Repair,
            &obj(json!({"customer_name": "王先生", "address": "旧地址", "fault": "noise"})),
            "",
        )
        .expect("valid");
        let moved = WorkOrder::merged(
            Some(&o),
            OrderKind::Repair,
            &obj(json!({"address": "新地址 1 号"})),
            "order.",
        )
        .expect("merged");
        assert_eq!(
            (moved.customer_name.as_str(), moved.address.as_str()),
            ("王先生", "新地址 1 号")
        );
        assert_eq!(moved.fault, Some(FaultType::Noise), "kept");
        let e = WorkOrder::merged(
            Some(&o),
            OrderKind::Repair,
            &obj(json!({"fault": "other"})),
            "order.",
        )
        .expect_err("other needs words");
        assert_eq!(e.field, "order.fault_detail");
        let e = WorkOrder::merged(
            Some(&o),
            OrderKind::Repair,
            &obj(json!({"address": null})),
            "order.",
        )
        .expect_err("cleared");
        assert_eq!(e.field, "order.address");
        assert_eq!(
            refuse_unknown(&obj(json!({"colour": 1})), &[], "order.")
                .expect_err("unknown")
                .field,
            "order.colour"
        );
    }

    #[test]
    fn an_order_s_optional_fields_may_be_absent() {
        let o: WorkOrder =
            serde_json::from_value(json!({"kind": "complaint", "customer_name": "李"}))
                .expect("defaults");
        assert_eq!((o.address.as_str(), o.subject), ("", None));
    }
}
