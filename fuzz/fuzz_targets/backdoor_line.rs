//! The backdoor's input side with arbitrary bytes: the line/telnet decoder and the command
//! parser must never panic, never hold more than the line limit, and cut the same lines
//! whatever the read boundaries are.
//!
//! Input: byte 0 picks the line limit (16..=271), byte 1 the read size (1..=64), the rest is
//! what a client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shrapnel::backdoor::line::{parse, Input, LineDecoder, Request};

fuzz_target!(|data: &[u8]| {
    let [limit, chunk, stream @ ..] = data else {
        return;
    };
    let max = 16 + *limit as usize;
    let chunk = 1 + (*chunk as usize % 64);

    // The whole stream in one read.
    let mut whole = Vec::new();
    LineDecoder::new(max).feed(stream, &mut whole);

    // The same stream in small reads, checking the bound after each.
    let mut dec = LineDecoder::new(max);
    let mut pieces = Vec::new();
    for part in stream.chunks(chunk) {
        dec.feed(part, &mut pieces);
        assert!(dec.buffered() <= max, "holds {} > {max}", dec.buffered());
    }
    assert_eq!(whole, pieces, "read boundaries changed the lines");

    for (i, input) in pieces.iter().enumerate() {
        match input {
            Input::Line(line) => {
                assert!(line.chars().count() <= max);
                assert!(
                    !line.chars().any(|c| (c < ' ' && c != '\t') || c == '\x7f'),
                    "control character in {line:?}"
                );
                match parse(line) {
                    Ok(Request::Eval(script)) => {
                        assert!(!script.is_empty() && line.contains(script))
                    }
                    Ok(Request::Other { name, args }) => {
                        assert!(!name.is_empty() && args.iter().all(|a| !a.is_empty()))
                    }
                    Ok(_) => {}
                    Err(e) => assert!(e.to_string().ends_with("; try `help`")),
                }
            }
            Input::End | Input::TooLong => {
                assert_eq!(i, pieces.len() - 1, "nothing after the end");
                assert!(dec.is_finished());
            }
        }
    }
});
