//! What the tree prints reaches the user's terminal (src/pty.rs relays it), and some
//! escape sequences act beyond the screen: OSC 52 sets the clipboard, which the user pastes
//! into a shell later; kitty's APC graphics and iTerm2's OSC 1337 move files; DCS carries
//! requests the terminal answers (DECRQSS) and tmux's passthrough to the terminal behind
//! it; a title report (CSI 21 t) types the title, which the tree set, as input. Answers
//! the terminal types after agentguard has exited go to the user's shell.
//!
//! The filter passes everything byte for byte except those: OSC sequences other than the
//! window title (0, 1, 2), the working directory (7), hyperlinks (8) and prompt marks
//! (133); every DCS, APC, PM and SOS string; title and icon reports. It is written here
//! rather than taken from a terminal parser because it must not re-encode what it passes:
//! a parser's callbacks would rebuild each sequence the tree's programs print.

/// OSC numbers a terminal only displays.
const OSC_KEPT: [&[u8]; 6] = [b"0", b"1", b"2", b"7", b"8", b"133"];
/// Longest OSC number buffered while deciding; longer means dropped.
const OSC_NUM_MAX: usize = 8;
/// Longest CSI sequence buffered; past it the bytes pass (no terminal acts on them).
const CSI_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC (or, inside a string, after ESC that did not end it).
    Esc,
    /// After ESC and an intermediate byte (ESC ( B, ESC # 8): the next final ends it.
    EscInt,
    /// An OSC whose number is being read (held in `pending`).
    OscNum,
    /// A string passed through (true) or dropped (false), to its terminator.
    Str(bool),
    /// ESC inside a string: ST if '\\' follows.
    StrEsc(bool),
    /// A CSI sequence (held in `pending`) to its final byte.
    Csi,
}

/// What the stream holds, once UTF-8 is decoded as a terminal decodes it first.
enum Unit<'a> {
    /// An ASCII byte: text, a C0 control, or part of a sequence.
    Ascii(u8),
    /// A C1 control: U+0080..U+009F in UTF-8, or a bare byte 0x80..0x9F that is not part
    /// of a UTF-8 character (a terminal not in UTF-8 mode acts on it).
    C1(u8),
    /// A character beyond ASCII, or bytes that are not UTF-8: text.
    Text(&'a [u8]),
}

/// Removes the sequences above from a byte stream read in pieces. It follows the states
/// a terminal's parser goes through (vt100.net's DEC parser, VTE's) where they decide what
/// a byte starts: C0 controls inside a sequence are executed without ending it, so
/// `ESC BEL ]` still starts an OSC; a C1 control ends whatever sequence it appears in and
/// starts its own, so `ESC ] 0 ; U+009D 52 ...` is an OSC 52.
#[derive(Debug)]
pub struct Filter {
    state: State,
    pending: Vec<u8>,
    /// Whether the string now read is an OSC, which BEL also ends.
    osc: bool,
    /// A UTF-8 character begun and not yet complete, and how many bytes it still needs.
    utf8: Vec<u8>,
    need: usize,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            state: State::Ground,
            pending: Vec::new(),
            osc: false,
            utf8: Vec::new(),
            need: 0,
        }
    }
}

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

/// C0 controls a terminal executes in the middle of a sequence.
fn executed(b: u8) -> bool {
    b < 0x20 && b != ESC && b != CAN && b != SUB
}

impl Filter {
    /// The part of `input` to pass on (what a sequence split across reads holds back is
    /// passed with a later piece).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.decode(b, out);
        }
    }

    /// UTF-8 first, as the terminal does: a complete character, a C1 control or a byte
    /// that is neither goes on to the sequence states.
    fn decode(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.need > 0 {
            if (0x80..=0xbf).contains(&b) {
                self.utf8.push(b);
                self.need -= 1;
                if self.need == 0 {
                    let ch = std::mem::take(&mut self.utf8);
                    match ch[..] {
                        [0xc2, c @ 0x80..=0x9f] => self.unit(Unit::C1(c), out),
                        _ => self.unit(Unit::Text(&ch), out),
                    }
                }
                return;
            }
            // Cut short: what was begun is not UTF-8, shown as it is.
            let ch = std::mem::take(&mut self.utf8);
            self.need = 0;
            self.unit(Unit::Text(&ch), out);
        }
        match b {
            0x00..=0x7f => self.unit(Unit::Ascii(b), out),
            0x80..=0x9f => self.unit(Unit::C1(b), out),
            0xc2..=0xdf => self.begin(b, 1),
            0xe0..=0xef => self.begin(b, 2),
            0xf0..=0xf4 => self.begin(b, 3),
            _ => self.unit(Unit::Text(&[b]), out),
        }
    }

    fn begin(&mut self, b: u8, need: usize) {
        self.utf8.clear();
        self.utf8.push(b);
        self.need = need;
    }

    fn unit(&mut self, u: Unit<'_>, out: &mut Vec<u8>) {
        match u {
            Unit::Ascii(b) => self.byte(b, out),
            Unit::C1(c) => self.c1(c, out),
            Unit::Text(t) => match self.state {
                State::Ground => out.extend_from_slice(t),
                State::Str(keep) => {
                    if keep {
                        out.extend_from_slice(t);
                    }
                }
                // Inside a sequence a character beyond ASCII ends it, whatever a given
                // terminal then does with it: the held bytes are dropped, the text passes.
                _ => {
                    self.close(out);
                    out.extend_from_slice(t);
                }
            },
        }
    }

    /// Ends the sequence in progress, as a C1 control or stray text ends it in the
    /// terminal: a kept string is closed with ST, anything held back is dropped.
    fn close(&mut self, out: &mut Vec<u8>) {
        if let State::Str(true) | State::StrEsc(true) = self.state {
            out.extend_from_slice(&[ESC, b'\\']);
        }
        self.pending.clear();
        self.state = State::Ground;
    }

    /// A C1 control, in any state: it ends the sequence in progress and starts its own.
    /// Those that start a string or a CSI are handled as their 7-bit forms; the others
    /// (ST, and screen or answer-back controls such as DECID) are dropped: programs
    /// written for UTF-8 terminals do not send them.
    fn c1(&mut self, c: u8, out: &mut Vec<u8>) {
        self.close(out);
        match c {
            0x9d => self.start_osc(),
            0x90 | 0x98 | 0x9e | 0x9f => self.start_str(),
            0x9b => self.start_csi(),
            _ => {}
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => match b {
                ESC => self.state = State::Esc,
                _ => out.push(b),
            },
            State::Esc => match b {
                b']' => self.start_osc(),
                b'P' | b'X' | b'^' | b'_' => self.start_str(),
                b'[' => self.start_csi(),
                // Another ESC starts over: the first is dropped, as the terminal drops it.
                ESC => {}
                CAN | SUB => {
                    out.extend_from_slice(&[ESC, b]);
                    self.state = State::Ground;
                }
                _ if executed(b) || b == 0x7f => out.push(b),
                0x20..=0x2f => {
                    out.extend_from_slice(&[ESC, b]);
                    self.state = State::EscInt;
                }
                _ => {
                    out.extend_from_slice(&[ESC, b]);
                    self.state = State::Ground;
                }
            },
            State::EscInt => match b {
                ESC => self.state = State::Esc,
                0x30..=0x7e | CAN | SUB => {
                    out.push(b);
                    self.state = State::Ground;
                }
                _ => out.push(b),
            },
            State::OscNum => match b {
                b'0'..=b'9' if self.pending.len() < 2 + OSC_NUM_MAX => self.pending.push(b),
                _ => {
                    let keep = (b == b';' || b == BEL) && OSC_KEPT.contains(&&self.pending[2..]);
                    if keep {
                        out.append(&mut self.pending);
                    }
                    self.pending.clear();
                    self.state = State::Str(keep);
                    self.byte(b, out);
                }
            },
            State::Str(keep) => match b {
                BEL if self.osc => {
                    if keep {
                        out.push(b);
                    }
                    self.state = State::Ground;
                }
                ESC => self.state = State::StrEsc(keep),
                CAN | SUB => {
                    out.push(b);
                    self.state = State::Ground;
                }
                _ => {
                    if keep {
                        out.push(b);
                    }
                }
            },
            State::StrEsc(keep) => {
                if keep {
                    out.extend_from_slice(&[ESC, b'\\']);
                }
                self.state = State::Ground;
                if b != b'\\' {
                    // ESC that is not ST ends the string and starts a sequence of its own
                    // (a kept string is closed with ST, as the terminal closed it).
                    self.state = State::Esc;
                    self.byte(b, out);
                }
            }
            State::Csi => match b {
                ESC => {
                    self.pending.clear();
                    self.state = State::Esc;
                }
                CAN | SUB => {
                    self.pending.clear();
                    out.push(b);
                    self.state = State::Ground;
                }
                0x40..=0x7e => {
                    self.pending.push(b);
                    if !self.is_report_request() {
                        out.append(&mut self.pending);
                    }
                    self.pending.clear();
                    self.state = State::Ground;
                }
                _ => {
                    self.pending.push(b);
                    if self.pending.len() > CSI_MAX {
                        // Longer than any a program sends: dropped whole, whatever it is.
                        self.pending.clear();
                        self.state = State::Str(false);
                        self.osc = false;
                    }
                }
            },
        }
    }

    fn start_osc(&mut self) {
        // Held as ESC ] whatever introduced it: only that form is passed on.
        self.pending.clear();
        self.pending.extend_from_slice(&[ESC, b']']);
        self.osc = true;
        self.state = State::OscNum;
    }

    fn start_str(&mut self) {
        self.osc = false;
        self.state = State::Str(false);
    }

    fn start_csi(&mut self) {
        // Held as ESC [ whatever introduced it (the 8-bit CSI too).
        self.pending.clear();
        self.pending.extend_from_slice(&[ESC, b'[']);
        self.state = State::Csi;
    }

    /// CSI 20 t and CSI 21 t: the terminal types the icon label or the window title. Read
    /// as the terminal reads the parameter: a number (leading zeros and all), with the
    /// controls it executes along the way left out.
    fn is_report_request(&self) -> bool {
        let body = &self.pending[2..];
        if body.last() != Some(&b't') {
            return false;
        }
        let first: Vec<u8> = body
            .iter()
            .copied()
            .filter(|&c| (0x30..=0x3f).contains(&c))
            .take_while(|&c| c != b';' && c != b':')
            .collect();
        let digits = std::str::from_utf8(&first).unwrap_or("");
        let n = digits.trim_start_matches('0');
        n == "20" || n == "21"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&[u8]]) -> Vec<u8> {
        let mut f = Filter::default();
        let mut out = Vec::new();
        for p in pieces {
            f.feed(p, &mut out);
        }
        out
    }

    fn whole(s: &[u8]) -> Vec<u8> {
        run(&[s])
    }

    #[test]
    fn plain_text_colours_and_titles_pass_byte_for_byte() {
        for s in [
            &b"hello \xc3\xa9 world\r\n"[..],
            b"\x1b[1;31mred\x1b[0m \x1b[2J\x1b[H",
            b"\x1b]0;title\x07",
            b"\x1b]2;title\x1b\\",
            b"\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\",
            b"\x1b]133;A\x07$ ",
            b"\x1b[6n\x1b[c",
            b"\x1b7\x1b8\x1b(B",
        ] {
            assert_eq!(whole(s), s, "{s:?}");
        }
    }

    #[test]
    fn clipboard_file_and_query_strings_are_dropped() {
        assert_eq!(whole(b"a\x1b]52;c;ZWNobyBwd25lZA==\x07b"), b"ab");
        assert_eq!(whole(b"a\x1b]52;c;ZWNobw==\x1b\\b"), b"ab");
        assert_eq!(whole(b"a\x1b]1337;File=name=eA==:eA==\x07b"), b"ab");
        assert_eq!(whole(b"a\x1b]11;?\x07b"), b"ab");
        assert_eq!(whole(b"a\x1bP$qm\x1b\\b"), b"ab");
        // tmux's passthrough: the doubled ESC ends the DCS (as in the terminal), the OSC
        // inside is dropped on its own, and a lone ST is left.
        assert_eq!(
            whole(b"a\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\b"),
            b"a\x1b\\b"
        );
        assert_eq!(whole(b"a\x1b_Gf=100,t=f;L2V0Yy9zaGFkb3c=\x1b\\b"), b"ab");
        assert_eq!(whole(b"a\x1b^pm\x1b\\b\x1bXsos\x1b\\c"), b"abc");
        // The 8-bit forms, as UTF-8 encodes them.
        assert_eq!(whole(b"a\xc2\x9d52;c;eA==\x07b"), b"ab");
        assert_eq!(whole(b"a\xc2\x90$qm\x1b\\b"), b"ab");
    }

    #[test]
    fn title_reports_are_dropped_and_other_csi_kept() {
        assert_eq!(whole(b"a\x1b[21tb\x1b[20t"), b"a\x62");
        assert_eq!(whole(b"\x1b[8;24;80t"), b"\x1b[8;24;80t");
    }

    #[test]
    fn a_sequence_split_across_reads_is_still_seen() {
        let s: &[u8] = b"x\x1b]52;c;ZWNobyBwd25lZA==\x07y\x1b]0;t\x07";
        for cut in 1..s.len() {
            assert_eq!(
                run(&[&s[..cut], &s[cut..]]),
                b"xy\x1b]0;t\x07",
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn controls_inside_a_sequence_do_not_hide_what_it_starts() {
        // A terminal executes BEL and stays in its escape state: ESC BEL ] is an OSC.
        assert_eq!(whole(b"\x1b\x07]52;c;eA==\x07b"), b"\x07b");
        assert_eq!(whole(b"\x1b\x1b]52;c;eA==\x07b"), b"b");
        // ESC cancels the CSI it interrupts, in the terminal as here.
        assert_eq!(whole(b"\x1b[1\x1b]52;c;eA==\x07b"), b"b");
        // An OSC number with a control inside is not a kept one.
        assert_eq!(whole(b"\x1b]5\x012;c;eA==\x07b"), b"b");
    }

    #[test]
    fn c1_controls_end_any_sequence_and_start_their_own() {
        // Inside a kept title, a CSI, a kept string ended by ST: the OSC 52 after it is
        // still seen. UTF-8 C1 and bare 8-bit C1 alike.
        for s in [
            &b"\x1b]0;\xc2\x9d52;c;ZWNobyBwd25lZA==\x07b"[..],
            b"\x1b[\xc2\x9d52;c;ZWNobyBwd25lZA==\x07b",
            b"\x1b]0;t\xc2\x9c\xc2\x9d52;c;ZWNobyBwd25lZA==\xc2\x9cb",
            b"\x9d52;c;ZWNobyBwd25lZA==\x9cb",
            b"\xc2\x90$qm\x1b\\b",
            b"\xc2\x9fGf=100,t=f;eA==\x1b\\b",
        ] {
            let out = whole(s);
            assert!(!out.windows(3).any(|w| w == b"52;"), "{s:?}: {out:?}");
            assert!(
                !out.windows(2).any(|w| w == b"eA" || w == b"$q"),
                "{s:?}: {out:?}"
            );
            assert!(out.ends_with(b"b"), "{s:?}: {out:?}");
        }
        // Text beyond ASCII passes, in titles too.
        assert_eq!(
            whole("caf\u{e9} \x1b]0;caf\u{e9}\x07".as_bytes()),
            "caf\u{e9} \x1b]0;caf\u{e9}\x07".as_bytes()
        );
    }

    #[test]
    fn title_reports_are_dropped_however_the_parameter_is_written() {
        for s in [
            &b"\x1b[021t"[..],
            b"\x1b[2\x071t",
            b"\x1b[2\x001t",
            b"\xc2\x9b21t",
            b"\x1b[000000000000000000000000000000000000000000000000000000000000000000000000021t",
        ] {
            let out = whole(s);
            assert!(!out.ends_with(b"t"), "{s:?}: {out:?}");
        }
    }

    #[test]
    fn an_esc_inside_a_string_ends_it() {
        // ESC [ inside a dropped OSC: the OSC ends there, the CSI is kept.
        assert_eq!(whole(b"\x1b]52;c;eA\x1b[1mB"), b"\x1b[1mB");
        // CAN aborts.
        assert_eq!(whole(b"\x1b]52;c;eA\x18B"), b"\x18B");
    }
}
