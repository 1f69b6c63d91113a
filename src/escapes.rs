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
    /// After a UTF-8 lead byte 0xc2: a C1 control may follow.
    C2,
    /// An OSC whose number is being read (held in `pending`).
    OscNum,
    /// A string passed through (true) or dropped (false), to its terminator.
    Str(bool),
    /// ESC inside a string: ST if '\' follows.
    StrEsc(bool),
    /// A CSI sequence (held in `pending`) to its final byte.
    Csi,
}

/// Removes the sequences above from a byte stream read in pieces. It follows the states
/// a terminal's parser goes through (vt100.net's DEC parser) where they decide what a
/// byte starts: C0 controls inside a sequence are executed without ending it, so
/// `ESC BEL ]` still starts an OSC.
#[derive(Debug)]
pub struct Filter {
    state: State,
    pending: Vec<u8>,
    /// Whether the string now read is an OSC, which BEL also ends.
    osc: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            state: State::Ground,
            pending: Vec::new(),
            osc: false,
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
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => match b {
                ESC => self.state = State::Esc,
                0xc2 => self.state = State::C2,
                _ => out.push(b),
            },
            State::C2 => match b {
                // C1 in UTF-8: OSC, and DCS, SOS, PM, APC.
                0x9d => self.start_osc(),
                0x90 | 0x98 | 0x9e | 0x9f => self.start_str(),
                0x9b => self.start_csi(&[0xc2, 0x9b]),
                _ => {
                    out.push(0xc2);
                    self.state = State::Ground;
                    self.byte(b, out);
                }
            },
            State::Esc => match b {
                b']' => self.start_osc(),
                b'P' | b'X' | b'^' | b'_' => self.start_str(),
                b'[' => self.start_csi(&[ESC, b'[']),
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
                0x30..=0x7e => {
                    out.extend_from_slice(&[ESC, b]);
                    self.state = State::Ground;
                }
                _ => {
                    out.push(ESC);
                    self.state = State::Ground;
                    self.byte(b, out);
                }
            },
            State::EscInt => match b {
                ESC => self.state = State::Esc,
                0x30..=0x7e | CAN | SUB => {
                    out.push(b);
                    self.state = State::Ground;
                }
                _ if b < 0x80 => out.push(b),
                _ => {
                    self.state = State::Ground;
                    self.byte(b, out);
                }
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
                    out.append(&mut self.pending);
                    self.state = State::Esc;
                }
                CAN | SUB => {
                    out.append(&mut self.pending);
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
                        // No terminal acts on such a sequence: pass it, unbuffered.
                        out.append(&mut self.pending);
                        self.state = State::Ground;
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

    fn start_csi(&mut self, intro: &[u8]) {
        self.pending.clear();
        self.pending.extend_from_slice(intro);
        self.state = State::Csi;
    }

    /// CSI 20 t and CSI 21 t: the terminal types the icon label or the window title.
    fn is_report_request(&self) -> bool {
        matches!(&self.pending[2..], b"20t" | b"21t")
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
        assert_eq!(whole(b"\x1b[1\x1b]52;c;eA==\x07b"), b"\x1b[1b");
        // An OSC number with a control inside is not a kept one.
        assert_eq!(whole(b"\x1b]5\x012;c;eA==\x07b"), b"b");
    }

    #[test]
    fn an_esc_inside_a_string_ends_it() {
        // ESC [ inside a dropped OSC: the OSC ends there, the CSI is kept.
        assert_eq!(whole(b"\x1b]52;c;eA\x1b[1mB"), b"\x1b[1mB");
        // CAN aborts.
        assert_eq!(whole(b"\x1b]52;c;eA\x18B"), b"\x18B");
    }
}
