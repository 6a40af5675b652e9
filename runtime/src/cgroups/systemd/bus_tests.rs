//! berth's side of the helper: the user bus found as runc finds it, and a
//! helper that dies or babbles is a one-line error, not a hang. (The calls
//! themselves, through the helper's loop, are in dbus_tests.rs.)

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use super::*;

#[test]
fn the_user_bus_is_found_as_runc_finds_it() {
    let s = |v: &str| Some(v.to_string());
    let yes = |_: &str| true;
    let no = |_: &str| false;
    // $DBUS_SESSION_BUS_ADDRESS wins, as given.
    let a = pick_user_address(s("unix:path=/x"), s("/run/user/1"), no).unwrap();
    assert_eq!(a, "unix:path=/x");
    let a = pick_user_address(None, s("/run/user/1000/"), yes).unwrap();
    assert_eq!(a, "unix:path=/run/user/1000/bus");
    let a = pick_user_address(None, s("/tmp/a b"), yes).unwrap();
    assert_eq!(a, "unix:path=/tmp/a%20b/bus");
    // Neither: one line naming what is missing and how to get it.
    let e = pick_user_address(None, s("/run/user/1000"), no)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/run/user/1000/bus does not exist"), "{e}");
    assert!(e.contains("enable-linger") && !e.contains('\n'), "{e}");
    let e = pick_user_address(None, None, yes).unwrap_err().to_string();
    assert!(e.contains("XDG_RUNTIME_DIR is unset"), "{e}");
}

/// A client and the other ends of its pipes, served by `f` on a thread.
fn with_helper(f: impl FnOnce(BufReader<UnixStream>, UnixStream) + Send + 'static) -> Bus {
    let (client_tx, helper_rx) = UnixStream::pair().unwrap();
    let (helper_tx, client_rx) = UnixStream::pair().unwrap();
    std::thread::spawn(move || f(BufReader::new(helper_rx), helper_tx));
    Bus::over(client_tx.into(), client_rx.into())
}

#[test]
fn a_helper_that_dies_or_babbles_is_one_line_error() {
    let bus = with_helper(|mut rx, _tx| {
        let mut line = String::new();
        rx.read_line(&mut line).unwrap();
        assert_eq!(line, "{\"call\":\"version\"}\n");
    });
    let e = bus.version().unwrap_err().to_string();
    assert_eq!(
        e,
        "the systemd cgroup driver's D-Bus helper berth-systemd: exited without an answer"
    );
    let bus = with_helper(|mut rx, mut tx| {
        rx.read_line(&mut String::new()).unwrap();
        tx.write_all(b"{\"Ok\": 42}\n").unwrap();
    });
    let e = bus.version().unwrap_err().to_string();
    assert!(e.contains("an answer berth cannot read"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    // Two replies in one read are two answers, in order.
    let bus = with_helper(|mut rx, mut tx| {
        tx.write_all(
            b"{\"Ok\":\"252\"}\n{\"Err\":{\"Job\":{\"unit\":\"u\",\"result\":\"failed\"}}}\n",
        )
        .unwrap();
        let mut line = String::new();
        while rx.read_line(&mut line).unwrap_or(0) > 0 {}
    });
    assert_eq!(bus.version().unwrap(), "252");
    let e = bus.stop_unit("u").unwrap_err();
    assert_eq!(e.to_string(), "systemd job for u finished with \"failed\"");
}

#[test]
fn a_reply_that_never_comes_times_out() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut pipe = Pipe {
        tx: File::from(OwnedFd::from(a)),
        rx: File::from(OwnedFd::from(b.try_clone().unwrap())),
        err: None,
        buf: Vec::new(),
    };
    let e = read_line(&mut pipe, Duration::from_millis(50)).unwrap_err();
    assert_eq!(e, "no answer within 50ms");
    drop(b);
}
