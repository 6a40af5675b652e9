//! The shim command line, as containerd writes it: Go `flag` syntax
//! (`-name value`, `-name=value`, `--name value`) followed by the action.

use crate::error::{Error, Result};

#[derive(Debug, Default)]
pub struct Flags {
    pub debug: bool,
    pub version: bool,
    pub namespace: String,
    pub id: String,
    pub address: String,
    pub publish_binary: String,
    pub bundle: String,
    pub socket: String,
    /// `start`, `delete`, or empty for the long-running server.
    pub action: String,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags> {
    let mut f = Flags::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            if !f.action.is_empty() {
                return Err(Error::Flags(format!("unexpected argument {arg:?}")));
            }
            f.action = arg;
            continue;
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        match name {
            "debug" => f.debug = inline.as_deref().is_none_or(|v| v == "true"),
            "v" | "version" => f.version = true,
            "namespace" | "id" | "address" | "publish-binary" | "bundle" | "socket" => {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| Error::Flags(format!("flag -{name} needs a value")))?,
                };
                let slot = match name {
                    "namespace" => &mut f.namespace,
                    "id" => &mut f.id,
                    "address" => &mut f.address,
                    "publish-binary" => &mut f.publish_binary,
                    "bundle" => &mut f.bundle,
                    _ => &mut f.socket,
                };
                *slot = value;
            }
            _ => return Err(Error::Flags(format!("unknown flag -{name}"))),
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Flags> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn containerd_start_line() {
        let f = p("-namespace ns1 -address /run/c.sock -publish-binary /usr/bin/containerd -id c1 -debug start").unwrap();
        assert_eq!((f.namespace.as_str(), f.id.as_str()), ("ns1", "c1"));
        assert_eq!(f.address, "/run/c.sock");
        assert!(f.debug);
        assert_eq!(f.action, "start");
    }

    #[test]
    fn equals_form_and_double_dash() {
        let f = p("--namespace=a -id=b -bundle /x delete").unwrap();
        assert_eq!(
            (f.namespace.as_str(), f.id.as_str(), f.bundle.as_str()),
            ("a", "b", "/x")
        );
        assert_eq!(f.action, "delete");
    }

    #[test]
    fn bad_input() {
        assert_eq!(
            p("-bogus 1").unwrap_err().to_string(),
            "shim flags: unknown flag -bogus"
        );
        assert_eq!(
            p("-id").unwrap_err().to_string(),
            "shim flags: flag -id needs a value"
        );
        assert!(p("start extra").is_err());
    }
}
