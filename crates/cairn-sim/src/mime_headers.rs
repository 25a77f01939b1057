//! Graph properties of messages created from MIME, and MIME for messages created from JSON.

use serde_json::{Map, Value, json};

fn addr_json(a: &mail_parser::Addr) -> Value {
    json!({"emailAddress": {"name": a.name.as_deref().unwrap_or(""), "address": a.address.as_deref().unwrap_or("")}})
}

fn addrs(list: Option<&mail_parser::Address>) -> Vec<Value> {
    match list {
        Some(a) => a.iter().map(addr_json).collect(),
        None => vec![],
    }
}

/// Reads the headers Graph exposes as properties from RFC 5322 bytes.
pub fn props_from_mime(raw: &[u8]) -> Map<String, Value> {
    let mut m = Map::new();
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        m.insert("subject".into(), json!(""));
        return m;
    };
    m.insert("subject".into(), json!(msg.subject().unwrap_or("")));
    if let Some(from) = msg.from().and_then(|f| f.first()) {
        m.insert("from".into(), addr_json(from));
        m.insert("sender".into(), addr_json(from));
    }
    m.insert("toRecipients".into(), json!(addrs(msg.to())));
    m.insert("ccRecipients".into(), json!(addrs(msg.cc())));
    if let Some(id) = msg.message_id() {
        m.insert("internetMessageId".into(), json!(format!("<{id}>")));
    }
    if let Some(d) = msg.date() {
        m.insert("sentDateTime".into(), json!(d.to_rfc3339()));
        m.insert("receivedDateTime".into(), json!(d.to_rfc3339()));
    }
    let text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    m.insert(
        "bodyPreview".into(),
        json!(text.chars().take(255).collect::<String>()),
    );
    m.insert(
        "body".into(),
        json!({"contentType": "text", "content": text}),
    );
    m.insert("hasAttachments".into(), json!(msg.attachment_count() > 0));
    m
}

/// A simple MIME rendering of a message created from JSON properties.
pub fn mime_from_props(p: &Map<String, Value>) -> Vec<u8> {
    let addr = |v: &Value| -> String {
        let a = &v["emailAddress"];
        format!(
            "{} <{}>",
            a["name"].as_str().unwrap_or(""),
            a["address"].as_str().unwrap_or("")
        )
    };
    let mut out = String::new();
    if let Some(f) = p.get("from") {
        out.push_str(&format!("From: {}\r\n", addr(f)));
    }
    if let Some(Value::Array(to)) = p.get("toRecipients") {
        let list: Vec<String> = to.iter().map(addr).collect();
        out.push_str(&format!("To: {}\r\n", list.join(", ")));
    }
    let subject = p.get("subject").and_then(Value::as_str).unwrap_or("");
    out.push_str(&format!("Subject: {subject}\r\nMIME-Version: 1.0\r\n"));
    out.push_str(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    out.push_str(
        p.get("body")
            .and_then(|b| b["content"].as_str())
            .unwrap_or(""),
    );
    out.push_str("\r\n");
    out.into_bytes()
}
