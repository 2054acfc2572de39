//! TwiML, written by a small XML writer: every text node and attribute value is escaped, so no
//! caller-supplied value (a number, a name, a parameter) can change the document's structure.

use std::fmt::Write as _;

/// One TwiML verb we emit.
#[derive(Clone, Debug, PartialEq)]
pub enum Verb {
    /// `<Say>text</Say>`.
    Say(String),
    /// `<Dial callerId timeout><Number>to</Number></Dial>`: transfer to a phone number.
    Dial {
        to: String,
        caller_id: Option<String>,
        timeout_secs: u32,
    },
    /// `<Hangup/>`.
    Hangup,
    /// `<Reject reason="rejected"/>`: refuse before answering (the caller is not billed).
    Reject,
    /// `<Connect><Stream url><Parameter name value/>…</Stream></Connect>`: a bidirectional
    /// media stream to a runtime; the parameters reach it in the stream's `start` message.
    Stream {
        url: String,
        parameters: Vec<(String, String)>,
    },
}

/// A `<Response>` of verbs, rendered.
pub fn render(verbs: &[Verb]) -> String {
    let mut w = XmlWriter::default();
    w.out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    w.open("Response", &[]);
    for verb in verbs {
        match verb {
            Verb::Say(text) => {
                w.open("Say", &[]);
                w.text(text);
                w.close("Say");
            }
            Verb::Dial {
                to,
                caller_id,
                timeout_secs,
            } => {
                let timeout = timeout_secs.to_string();
                let mut attrs = vec![("timeout", timeout.as_str())];
                if let Some(id) = caller_id {
                    attrs.insert(0, ("callerId", id.as_str()));
                }
                w.open("Dial", &attrs);
                w.open("Number", &[]);
                w.text(to);
                w.close("Number");
                w.close("Dial");
            }
            Verb::Hangup => w.empty("Hangup", &[]),
            Verb::Reject => w.empty("Reject", &[("reason", "rejected")]),
            Verb::Stream { url, parameters } => {
                w.open("Connect", &[]);
                w.open("Stream", &[("url", url)]);
                for (name, value) in parameters {
                    w.empty("Parameter", &[("name", name), ("value", value)]);
                }
                w.close("Stream");
                w.close("Connect");
            }
        }
    }
    w.close("Response");
    w.out
}

#[derive(Default)]
struct XmlWriter {
    out: String,
}

impl XmlWriter {
    fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            let _ = write!(self.out, " {key}=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.out.push('>');
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.out.push_str("/>");
    }

    fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    fn close(&mut self, name: &str) {
        let _ = write!(self.out, "</{name}>");
    }
}

/// Escapes the five XML special characters and drops characters XML 1.0 cannot carry.
fn escape_into(out: &mut String, raw: &str) {
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_carries_its_parameters() {
        // GIVEN a stream to a runtime with two parameters
        let xml = render(&[Verb::Stream {
            url: "wss://rt.example:18080/media-stream".into(),
            parameters: vec![
                ("call_id".into(), "call_1".into()),
                ("agent_id".into(), "agt_1".into()),
            ],
        }]);
        // THEN the document is exactly the TwiML Twilio expects
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://rt.example:18080/media-stream"><Parameter name="call_id" value="call_1"/><Parameter name="agent_id" value="agt_1"/></Stream></Connect></Response>"#
        );
    }

    #[test]
    fn user_text_cannot_break_out() {
        // GIVEN text and attribute values that try to inject markup
        let xml = render(&[
            Verb::Say("Closed </Say><Dial>+1900</Dial> & \"bye\"\u{0}".into()),
            Verb::Dial {
                to: "+14155552671".into(),
                caller_id: Some("\"/><Hangup/>".into()),
                timeout_secs: 20,
            },
        ]);
        // THEN everything is escaped and the structure is ours
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>Closed &lt;/Say&gt;&lt;Dial&gt;+1900&lt;/Dial&gt; &amp; &quot;bye&quot;</Say><Dial callerId="&quot;/&gt;&lt;Hangup/&gt;" timeout="20"><Number>+14155552671</Number></Dial></Response>"#
        );
    }

    #[test]
    fn reject_and_hangup_are_empty_elements() {
        // GIVEN the refusal and the apology
        // THEN they render as Twilio documents them
        assert_eq!(
            render(&[Verb::Reject]),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="rejected"/></Response>"#
        );
        assert!(
            render(&[Verb::Say("Sorry".into()), Verb::Hangup])
                .ends_with("<Say>Sorry</Say><Hangup/></Response>")
        );
    }
}
