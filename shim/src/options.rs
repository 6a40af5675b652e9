//! Runtime options containerd attaches to CreateTask: the runc shim's own
//! type (what `ctr --runc-binary` and CRI runtimes of type runc send) or the
//! generic runtimeoptions.v1.Options that CRI sends for other shims.

use std::path::{Path, PathBuf};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{CodedInputStream, Message};
use containerd_shim_protos::shim::oci::Options as RuncOptions;

use crate::error::{Error, Result};

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub binary_name: Option<String>,
    pub root: Option<PathBuf>,
    pub systemd_cgroup: bool,
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
}

const RUNC_TYPE: &str = "containerd.runc.v1.Options";
const GENERIC_TYPE: &str = "runtimeoptions.v1.Options";

/// containerd writes bare type names; protobuf's own packing prefixes a host.
fn type_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

pub fn decode(any: Option<&Any>) -> Result<Options> {
    let Some(any) = any.filter(|a| !a.type_url.is_empty()) else {
        return Ok(Options::default());
    };
    match type_name(&any.type_url) {
        RUNC_TYPE => from_runc(&any.value),
        GENERIC_TYPE => from_generic(&any.value),
        other => Err(Error::invalid(
            "runtime options",
            format!("unsupported type {other}"),
        )),
    }
}

fn from_runc(value: &[u8]) -> Result<Options> {
    let o = RuncOptions::parse_from_bytes(value).map_err(|source| Error::Proto {
        what: "decode containerd.runc.v1.Options",
        source,
    })?;
    // Fields that would change behaviour but that we cannot honour are
    // refused by name rather than dropped.
    let unsupported = [
        ("ShimCgroup", !o.shim_cgroup.is_empty()),
        ("IoUid", o.io_uid != 0),
        ("IoGid", o.io_gid != 0),
        ("CriuImagePath", !o.criu_image_path.is_empty()),
        ("CriuWorkPath", !o.criu_work_path.is_empty()),
        // containerd 2's sandbox API; this shim serves the task API only.
        ("TaskAPIAddress", !o.task_api_address.is_empty()),
        ("TaskAPIVersion", o.task_api_version != 0),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(Error::invalid(
            format!("runtime option {name}"),
            "not supported by the berth shim",
        ));
    }
    // A field this proto does not know (CriuPath, number 8, from an older
    // containerd, say) is refused by number, not dropped.
    if let Some((number, _)) = o.special_fields.unknown_fields().iter().next() {
        return Err(Error::invalid(
            format!("runtime option field {number}"),
            "unknown to the berth shim",
        ));
    }
    Ok(Options {
        binary_name: Some(o.binary_name).filter(|s| !s.is_empty()),
        root: Some(o.root).filter(|s| !s.is_empty()).map(PathBuf::from),
        systemd_cgroup: o.systemd_cgroup,
        no_pivot_root: o.no_pivot_root,
        no_new_keyring: o.no_new_keyring,
    })
}

/// runtimeoptions.v1.Options { string type_url = 1; string config_path = 2; }
/// is not in the protos crate; two string fields are decoded by hand.
fn from_generic(value: &[u8]) -> Result<Options> {
    match generic_config_path(value)? {
        None => Ok(Options::default()),
        Some(path) => read_config(Path::new(&path)),
    }
}

/// The config file a runtimeoptions.v1.Options names, if any.
pub(crate) fn generic_config_path(value: &[u8]) -> Result<Option<String>> {
    let mut is = CodedInputStream::from_bytes(value);
    let mut config_path = String::new();
    let proto = |source| Error::Proto {
        what: "decode runtimeoptions.v1.Options",
        source,
    };
    while !is.eof().map_err(proto)? {
        let tag = is.read_raw_varint32().map_err(proto)?;
        match (tag >> 3, tag & 7) {
            (1, 2) => {
                is.read_string().map_err(proto)?;
            }
            (2, 2) => config_path = is.read_string().map_err(proto)?,
            (_, wire) => {
                let wt =
                    containerd_shim_protos::protobuf::rt::WireType::new(wire).ok_or_else(|| {
                        Error::invalid("runtimeoptions.v1.Options", format!("bad wire type {wire}"))
                    })?;
                is.skip_field(wt).map_err(proto)?;
            }
        }
    }
    Ok(Some(config_path).filter(|p| !p.is_empty()))
}

/// The shim's config file: a flat TOML subset, `Key = "string"` or
/// `Key = true|false` lines, with the runc option names.
pub fn read_config(path: &Path) -> Result<Options> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read shim config", path))?;
    parse_config(&text, path)
}

/// The text of the config file at `path` (named in errors).
pub(crate) fn parse_config(text: &str, path: &Path) -> Result<Options> {
    let mut o = Options::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let field = || format!("{}:{}", path.display(), n + 1);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| Error::invalid(field(), "expected Key = value"))?;
        let (k, v) = (k.trim(), v.trim());
        let string = || {
            v.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .map(String::from)
                .ok_or_else(|| Error::invalid(field(), format!("{k} needs a quoted string")))
        };
        let boolean = || match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Error::invalid(field(), format!("{k} needs true or false"))),
        };
        match k {
            "BinaryName" => o.binary_name = Some(string()?).filter(|s| !s.is_empty()),
            "Root" => o.root = Some(PathBuf::from(string()?)),
            "SystemdCgroup" => o.systemd_cgroup = boolean()?,
            "NoPivotRoot" => o.no_pivot_root = boolean()?,
            "NoNewKeyring" => o.no_new_keyring = boolean()?,
            _ => return Err(Error::invalid(field(), format!("unknown option {k}"))),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(url: &str, value: Vec<u8>) -> Any {
        Any {
            type_url: url.into(),
            value,
            ..Default::default()
        }
    }

    #[test]
    fn none_and_runc_type() {
        assert_eq!(decode(None).unwrap(), Options::default());
        let o = RuncOptions {
            binary_name: "/x/berth".into(),
            systemd_cgroup: true,
            ..Default::default()
        };
        let d = decode(Some(&any(RUNC_TYPE, o.write_to_bytes().unwrap()))).unwrap();
        assert_eq!(d.binary_name.as_deref(), Some("/x/berth"));
        assert!(d.systemd_cgroup);
        // host-prefixed type URLs are the same type
        let d = decode(Some(&any(
            "type.googleapis.com/containerd.runc.v1.Options",
            vec![],
        )))
        .unwrap();
        assert_eq!(d, Options::default());
    }

    #[test]
    fn unsupported_runc_field_is_named() {
        let o = RuncOptions {
            shim_cgroup: "/shims".into(),
            ..Default::default()
        };
        let e = decode(Some(&any(RUNC_TYPE, o.write_to_bytes().unwrap()))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid runtime option ShimCgroup: not supported by the berth shim"
        );
    }

    #[test]
    fn task_api_and_unknown_runc_fields_are_refused() {
        let o = RuncOptions {
            task_api_address: "/run/sandbox.sock".into(),
            ..Default::default()
        };
        let e = decode(Some(&any(RUNC_TYPE, o.write_to_bytes().unwrap()))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid runtime option TaskAPIAddress: not supported by the berth shim"
        );
        // field 8 (criu_path, string) = "/usr/sbin/criu", then a known field
        let mut v = Vec::new();
        let mut os = containerd_shim_protos::protobuf::CodedOutputStream::vec(&mut v);
        os.write_string(8, "/usr/sbin/criu").unwrap();
        os.write_bool(9, true).unwrap();
        os.flush().unwrap();
        drop(os);
        let e = decode(Some(&any(RUNC_TYPE, v))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid runtime option field 8: unknown to the berth shim"
        );
    }

    fn generic(type_url: &str, path: &str) -> Vec<u8> {
        let mut v = Vec::new();
        let mut os = containerd_shim_protos::protobuf::CodedOutputStream::vec(&mut v);
        os.write_string(1, type_url).unwrap();
        os.write_string(2, path).unwrap();
        os.flush().unwrap();
        drop(os);
        v
    }

    #[test]
    fn generic_type_reads_config() {
        let dir = std::env::temp_dir().join(format!("berth-shim-opt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("shim.toml");
        std::fs::write(
            &cfg,
            "# berth\nBinaryName = \"/opt/berth\"\nSystemdCgroup = false\n",
        )
        .unwrap();
        let d = decode(Some(&any(
            GENERIC_TYPE,
            generic("x", cfg.to_str().unwrap()),
        )))
        .unwrap();
        assert_eq!(d.binary_name.as_deref(), Some("/opt/berth"));
        // no config path: defaults
        assert_eq!(
            decode(Some(&any(GENERIC_TYPE, generic("x", "")))).unwrap(),
            Options::default()
        );
        std::fs::write(&cfg, "Bogus = 1\n").unwrap();
        let e = decode(Some(&any(
            GENERIC_TYPE,
            generic("x", cfg.to_str().unwrap()),
        )))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("invalid {}:1: unknown option Bogus", cfg.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_type_is_refused() {
        let e = decode(Some(&any("foo.Options", vec![]))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid runtime options: unsupported type foo.Options"
        );
    }
}
