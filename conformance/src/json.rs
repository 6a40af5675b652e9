//! Small accessors over a config.json kept as `serde_json::Value`. The suite
//! reads configs untyped on purpose: it must accept any config a scenario
//! writes (including invalid ones) and notice fields a typed model lacks.

use serde_json::Value;

/// Follows a dotted path (`"process.user.uid"`); `None` when any step is missing or null.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for key in path.split('.') {
        cur = cur.get(key)?;
    }
    (!cur.is_null()).then_some(cur)
}

pub fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path)?.as_str()
}

pub fn i64_at(v: &Value, path: &str) -> Option<i64> {
    at(v, path)?.as_i64()
}

pub fn u64_at(v: &Value, path: &str) -> Option<u64> {
    at(v, path)?.as_u64()
}

pub fn bool_at(v: &Value, path: &str) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// An array of strings; non-string items are dropped.
pub fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn arr<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Mutable access that creates the objects on the way, for building configs.
pub fn set(v: &mut Value, path: &str, val: Value) {
    let mut cur = v;
    for key in path.split('.') {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        cur = cur
            .as_object_mut()
            .expect("made an object above")
            .entry(key.to_string())
            .or_insert(Value::Null);
    }
    *cur = val;
}

/// Removes the last key of a dotted path, if present.
pub fn remove(v: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (p, l),
        None => ("", path),
    };
    let obj = if parent.is_empty() {
        Some(v)
    } else {
        parent.split('.').try_fold(v, |c, k| c.get_mut(k))
    };
    if let Some(Value::Object(m)) = obj {
        m.remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_creates_and_at_reads() {
        let mut v = json!({});
        set(&mut v, "process.user.uid", json!(7));
        assert_eq!(u64_at(&v, "process.user.uid"), Some(7));
        remove(&mut v, "process.user");
        assert!(at(&v, "process.user").is_none());
        assert!(at(&v, "process").is_some());
    }
}
