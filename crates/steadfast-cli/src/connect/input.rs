//! What is sent for each line of stdin (`--send`).

use crate::exit::Failure;
use crate::stdin::Line;

/// `--send`: the text sent for a line, with `{line}` and `{key}` filled in.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pattern: String,
    keyed: bool,
}

impl Template {
    /// With acks (`keyed`), the key must be in what is sent, or the server
    /// could not name it.
    pub(crate) fn parse(pattern: &str, keyed: bool) -> Result<Template, Failure> {
        if keyed && !pattern.contains("{key}") {
            return Err(Failure::usage(format!(
                "--ack needs the key in what is sent: --send {pattern:?} has no {{key}} \
                 (e.g. --send 'seq:{{key}}:{{line}}')"
            )));
        }
        Ok(Template {
            pattern: pattern.to_owned(),
            keyed,
        })
    }

    /// Whether lines go out keyed (the server acks them by key).
    pub(crate) fn keyed(&self) -> bool {
        self.keyed
    }

    /// The text sent for `line`.
    pub(crate) fn render(&self, line: &Line) -> String {
        if self.pattern == "{line}" {
            return line.text.clone();
        }
        self.pattern
            .replace("{key}", &line.key.to_string())
            .replace("{line}", &line.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_fills_in_line_and_key() {
        let line = Line {
            key: 7,
            text: "hello {key}".into(),
        };
        let t = Template::parse("seq:{key}:{line}", true).expect("valid");
        assert_eq!(t.render(&line), "seq:7:hello {key}");
        let plain = Template::parse("{line}", false).expect("valid");
        assert_eq!(plain.render(&line), "hello {key}");
    }

    #[test]
    fn acks_without_a_key_in_the_message_are_refused() {
        let err = Template::parse("{line}", true).unwrap_err();
        assert!(err.message.contains("{key}"), "{}", err.message);
    }
}
