//! The console line editor and attach switch, driven by byte sequences.

use dom0_tools::shell::{Action, Shell};

fn echo(v: &[u8]) -> Action {
    Action::Echo(v.to_vec())
}

#[test]
fn typing_a_command() {
    let mut s = Shell::new("dom0# ");
    assert_eq!(
        s.feed(b"xl lisx\x7ft\r"),
        vec![
            echo(b"xl lisx\x08 \x08t\r\n"),
            Action::Run("xl list".into())
        ]
    );
    // CRLF counts once; an empty line just re-prompts.
    assert_eq!(s.feed(b"\n\r\n"), vec![echo(b"\r\ndom0# ")]);
}

#[test]
fn line_editing() {
    let mut s = Shell::new("$ ");
    assert_eq!(
        s.feed(b"abc\x15"),
        vec![echo(b"abc\x08 \x08\x08 \x08\x08 \x08")]
    );
    assert_eq!(s.line(), b"");
    assert_eq!(
        s.feed(b"xl list  \x17"),
        vec![echo(
            b"xl list  \x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08"
        )]
    );
    assert_eq!(s.line(), b"xl ");
    assert_eq!(s.feed(b"\x03"), vec![echo(b"^C\r\n$ ")]);
    assert_eq!(s.line(), b"");
    // Arrow keys are swallowed, control characters ring the bell, backspace on empty is quiet.
    assert_eq!(
        s.feed(b"\x1b[A\x1bOBa\x01\x08\x08"),
        vec![echo(b"a\x07\x08 \x08")]
    );
    let long = vec![b'x'; dom0_tools::shell::MAX_LINE + 1];
    let out = s.feed(&long);
    assert_eq!(out.len(), 1);
    assert_eq!(s.line().len(), dom0_tools::shell::MAX_LINE);
}

#[test]
fn console_attach_and_detach() {
    let mut s = Shell::new("# ");
    // Input after the command waits until the caller has run it.
    assert_eq!(
        s.feed(b"xl console 3\rls\r\x1dxl list\r"),
        vec![
            echo(b"xl console 3\r\n"),
            Action::Run("xl console 3".into())
        ]
    );
    assert!(s.pending());
    s.attach(3);
    assert_eq!(s.attached(), Some(3));
    assert_eq!(
        s.feed(b""),
        vec![
            Action::ToGuest {
                domid: 3,
                bytes: b"ls\r".to_vec()
            },
            echo(b"\r\n# "),
            Action::Detached { domid: 3 },
            echo(b"xl list\r\n"),
            Action::Run("xl list".into()),
        ]
    );
    assert_eq!(s.attached(), None);
    // Ctrl-C and everything else goes to the guest while attached.
    s.attach(5);
    assert_eq!(
        s.feed(b"\x03\x7f"),
        vec![Action::ToGuest {
            domid: 5,
            bytes: b"\x03\x7f".to_vec()
        }]
    );
    assert_eq!(
        s.detach(),
        vec![echo(b"\r\n# "), Action::Detached { domid: 5 }]
    );
}
