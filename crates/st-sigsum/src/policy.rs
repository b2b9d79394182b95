//! The Sigsum policy file (`ospkg_trust_policy` in an ST trust policy directory): which logs
//! are trusted, which witnesses, and which combination of witnesses must have cosigned a tree
//! head (sigsum-go `doc/policy.md`).
//!
//! ```text
//! log <hex public key> [url]
//! witness <name> <hex public key> [url]
//! group <name> all|any|<k> <member>...
//! quorum <name>|none
//! ```
//!
//! The parser accepts what sigsum-go v0.11.2 accepts (the version ST 1.3's tools use), so
//! every policy file that works with the reference keeps working, with these exceptions, each
//! a file no tool writes and that would hide a mistake (docs/compatibility.md):
//!
//! - a member listed twice in one group is refused (v0.11.2 counts it twice toward the
//!   group's threshold, so one witness could meet a 2-of-n rule; sigsum-go v0.13 refuses it too);
//! - control bytes other than tab, CR, VT and FF, and DEL, are refused (sigsum-go v0.13's rule,
//!   except that we keep accepting CR so that CRLF files still parse as in v0.11.2);
//! - a file over [`MAX_POLICY_BYTES`], or with more than [`MAX_ENTRIES`] logs, witnesses or
//!   groups, is refused.
//!
//! As in v0.11.2, `#` starts a comment anywhere on a line, fields are separated by any
//! whitespace (Go `strings.Fields`), names are opaque bytes, keys are hex in either case, a
//! group's `k` is a Go `strconv.Atoi` integer, `none` is the empty group (always met), a name
//! must be defined before use, and a group or witness may be a member of several groups.

use crate::KeyHash;
use crate::codec::{self, HexError};
use std::fmt;

/// Largest policy file accepted: 64 KiB, the longest line sigsum-go's scanner reads (the
/// production policy `sigsum-generic-2025-1` is 1.4 KiB with its comments).
pub const MAX_POLICY_BYTES: usize = 64 << 10;

/// Most logs, and most witnesses, and most groups in one policy: 64 each, twice the 32 the
/// Sigsum policy document asks implementations to support.
pub const MAX_ENTRIES: usize = 64;

/// A trusted log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Its Ed25519 public key.
    pub key: [u8; 32],
    /// SHA-256 of the key: how proofs name the log.
    pub key_hash: KeyHash,
    /// Its URL, when the line gave one (only submitters use it).
    pub url: Option<String>,
}

/// A witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// Its name in the policy (opaque bytes, shown lossily as UTF-8).
    pub name: String,
    /// Its Ed25519 public key.
    pub key: [u8; 32],
    /// SHA-256 of the key: how cosignatures name the witness.
    pub key_hash: KeyHash,
}

/// What a group member or the quorum refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// The predefined empty group `none`: always met.
    None,
    /// A witness, by index in [`Policy::witnesses`].
    Witness(usize),
    /// A group, by index in [`Policy::groups`] (always an earlier group).
    Group(usize),
}

/// A `group` line: met when at least `k` of its members are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Members needed.
    pub k: usize,
    /// Its members, in file order.
    pub members: Vec<Member>,
}

/// A parsed Sigsum policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<Log>,
    witnesses: Vec<Witness>,
    groups: Vec<Group>,
    quorum: Member,
}

/// Why a policy file was refused: the line (1-based; 0 for the file as a whole) and what is
/// wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", if *line > 0 { format!("line {line}: ") } else { String::new() })]
pub struct PolicyError {
    /// The line, counting from 1; 0 when the error is about the whole file.
    pub line: usize,
    /// What is wrong.
    pub kind: PolicyErrorKind,
}

/// What is wrong in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// Over [`MAX_POLICY_BYTES`].
    #[error("the policy is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Bytes given.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// A control byte that no policy holds.
    #[error("control byte 0x{byte:02x} (only tab, CR and printable text may appear)")]
    ControlByte {
        /// The byte.
        byte: u8,
    },
    /// The first word is not `log`, `witness`, `group` or `quorum`.
    #[error("unknown keyword {0:?} (expected log, witness, group or quorum)")]
    UnknownKeyword(String),
    /// Too few or too many words for the keyword.
    #[error("{keyword} line: {expected}")]
    Arity {
        /// The keyword.
        keyword: &'static str,
        /// What the line must hold.
        expected: &'static str,
    },
    /// A public key that is not 32 bytes of hex.
    #[error("{keyword} public key: {reason}, expected 64 hex digits (32 bytes)")]
    Key {
        /// The keyword of the line.
        keyword: &'static str,
        /// What is wrong.
        reason: HexError,
    },
    /// The same log key twice.
    #[error("duplicate log: key {0} is already listed")]
    DuplicateLog(String),
    /// The same witness key under two names (or twice).
    #[error("duplicate witness: key {key} is already witness {first:?}")]
    DuplicateWitnessKey {
        /// Hex of the key.
        key: String,
        /// The name it was first given.
        first: String,
    },
    /// A witness or group name already in use (including the predefined `none`).
    #[error("duplicate name {0:?}")]
    DuplicateName(String),
    /// A member or quorum that names nothing defined above it.
    #[error("undefined name {0:?} (names must be defined before they are used)")]
    UndefinedName(String),
    /// A group's threshold that is not `all`, `any` or an integer from 1 to its member count.
    #[error(
        "group {group:?}: threshold {threshold:?} is not all, any or a number from 1 to {members}"
    )]
    Threshold {
        /// The group.
        group: String,
        /// The threshold as written.
        threshold: String,
        /// Its member count.
        members: usize,
    },
    /// A member listed twice in one group.
    #[error("group {group:?} lists {member:?} twice; it would count twice toward the threshold")]
    DuplicateMember {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// A second `quorum` line.
    #[error("quorum can only be set once")]
    QuorumTwice,
    /// No `quorum` line.
    #[error("no quorum line (write \"quorum none\" for a policy without witnesses)")]
    NoQuorum,
    /// Over [`MAX_ENTRIES`] logs, witnesses or groups.
    #[error("more than {max} {what}")]
    TooMany {
        /// `logs`, `witnesses` or `groups`.
        what: &'static str,
        /// The cap.
        max: usize,
    },
}

/// Whitespace as Go's `unicode.IsSpace` (and so `strings.Fields`) sees it. Invalid UTF-8 bytes
/// are never whitespace, as in Go, where each decodes to U+FFFD.
fn fields(line: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0usize;
    for chunk in line.utf8_chunks() {
        for (i, c) in chunk.valid().char_indices() {
            let at = pos + i;
            if c.is_whitespace() {
                if let Some(s) = start.take() {
                    out.push(line.get(s..at).unwrap_or_default());
                }
            } else if start.is_none() {
                start = Some(at);
            }
        }
        pos += chunk.valid().len();
        if !chunk.invalid().is_empty() && start.is_none() {
            start = Some(pos);
        }
        pos += chunk.invalid().len();
    }
    if let Some(s) = start {
        out.push(line.get(s..).unwrap_or_default());
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Go `strconv.Atoi` for a group threshold: optional sign, decimal digits.
fn atoi(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -n } else { n })
}

struct Builder {
    policy: Policy,
    /// Names in definition order with what they refer to; `none` is predefined.
    names: Vec<(Vec<u8>, Member)>,
    quorum: Option<Member>,
}

impl Builder {
    fn lookup(&self, name: &[u8]) -> Option<Member> {
        self.names
            .iter()
            .find(|(n, _)| n.as_slice() == name)
            .map(|(_, m)| *m)
    }

    fn key(keyword: &'static str, hex: &[u8]) -> Result<[u8; 32], PolicyErrorKind> {
        codec::unhex::<32>(hex).map_err(|reason| PolicyErrorKind::Key { keyword, reason })
    }

    fn line(&mut self, words: &[&[u8]]) -> Result<(), PolicyErrorKind> {
        let Some((&keyword, args)) = words.split_first() else {
            return Ok(());
        };
        match keyword {
            b"log" => {
                let (key, url) = match args {
                    [key] => (key, None),
                    [key, url] => (key, Some(text(url))),
                    _ => {
                        return Err(PolicyErrorKind::Arity {
                            keyword: "log",
                            expected: "a public key, then an optional URL",
                        });
                    }
                };
                let key = Self::key("log", key)?;
                if self.policy.logs.iter().any(|l| l.key == key) {
                    return Err(PolicyErrorKind::DuplicateLog(codec::hex(&key)));
                }
                if self.policy.logs.len() >= MAX_ENTRIES {
                    return Err(PolicyErrorKind::TooMany {
                        what: "logs",
                        max: MAX_ENTRIES,
                    });
                }
                self.policy.logs.push(Log {
                    key,
                    key_hash: KeyHash::of(&key),
                    url,
                });
            }
            b"witness" => {
                let (name, key) = match args {
                    [name, key] | [name, key, _] => (*name, *key),
                    _ => {
                        return Err(PolicyErrorKind::Arity {
                            keyword: "witness",
                            expected: "a name and a public key, then an optional URL",
                        });
                    }
                };
                let key = Self::key("witness", key)?;
                if self.lookup(name).is_some() {
                    return Err(PolicyErrorKind::DuplicateName(text(name)));
                }
                if let Some(w) = self.policy.witnesses.iter().find(|w| w.key == key) {
                    return Err(PolicyErrorKind::DuplicateWitnessKey {
                        key: codec::hex(&key),
                        first: w.name.clone(),
                    });
                }
                if self.policy.witnesses.len() >= MAX_ENTRIES {
                    return Err(PolicyErrorKind::TooMany {
                        what: "witnesses",
                        max: MAX_ENTRIES,
                    });
                }
                let index = self.policy.witnesses.len();
                self.policy.witnesses.push(Witness {
                    name: text(name),
                    key,
                    key_hash: KeyHash::of(&key),
                });
                self.names.push((name.to_vec(), Member::Witness(index)));
            }
            b"group" => {
                let [name, threshold, members @ ..] = args else {
                    return Err(PolicyErrorKind::Arity {
                        keyword: "group",
                        expected: "a name, a threshold and at least one member",
                    });
                };
                if members.is_empty() {
                    return Err(PolicyErrorKind::Arity {
                        keyword: "group",
                        expected: "a name, a threshold and at least one member",
                    });
                }
                if self.lookup(name).is_some() {
                    return Err(PolicyErrorKind::DuplicateName(text(name)));
                }
                let n = members.len();
                let k = match *threshold {
                    b"any" => Some(1),
                    b"all" => Some(n),
                    t => atoi(t)
                        .and_then(|k| usize::try_from(k).ok())
                        .filter(|k| (1..=n).contains(k)),
                };
                let Some(k) = k else {
                    return Err(PolicyErrorKind::Threshold {
                        group: text(name),
                        threshold: text(threshold),
                        members: n,
                    });
                };
                let mut resolved = Vec::with_capacity(n);
                for (i, m) in members.iter().enumerate() {
                    let member = self
                        .lookup(m)
                        .ok_or_else(|| PolicyErrorKind::UndefinedName(text(m)))?;
                    if members.get(..i).is_some_and(|before| before.contains(m)) {
                        return Err(PolicyErrorKind::DuplicateMember {
                            group: text(name),
                            member: text(m),
                        });
                    }
                    resolved.push(member);
                }
                if self.policy.groups.len() >= MAX_ENTRIES {
                    return Err(PolicyErrorKind::TooMany {
                        what: "groups",
                        max: MAX_ENTRIES,
                    });
                }
                let index = self.policy.groups.len();
                self.policy.groups.push(Group {
                    name: text(name),
                    k,
                    members: resolved,
                });
                self.names.push((name.to_vec(), Member::Group(index)));
            }
            b"quorum" => {
                let [name] = args else {
                    return Err(PolicyErrorKind::Arity {
                        keyword: "quorum",
                        expected: "exactly one group or witness name (or none)",
                    });
                };
                if self.quorum.is_some() {
                    return Err(PolicyErrorKind::QuorumTwice);
                }
                self.quorum = Some(
                    self.lookup(name)
                        .ok_or_else(|| PolicyErrorKind::UndefinedName(text(name)))?,
                );
            }
            other => return Err(PolicyErrorKind::UnknownKeyword(text(other))),
        }
        Ok(())
    }
}

impl Policy {
    /// Parse a policy file.
    pub fn parse(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(PolicyError {
                line: 0,
                kind: PolicyErrorKind::TooLarge {
                    size: bytes.len(),
                    max: MAX_POLICY_BYTES,
                },
            });
        }
        let mut b = Builder {
            policy: Self {
                logs: Vec::new(),
                witnesses: Vec::new(),
                groups: Vec::new(),
                quorum: Member::None,
            },
            names: vec![(b"none".to_vec(), Member::None)],
            quorum: None,
        };
        // Lines as Go's bufio.ScanLines cuts them: at '\n', a final '\r' dropped, a last line
        // without '\n' still a line.
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        for (i, raw) in body.split(|&c| c == b'\n').enumerate() {
            let line = i + 1;
            if bytes.is_empty() {
                break;
            }
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if let Some(&byte) = raw
                .iter()
                .find(|&&c| (c < 0x20 && !matches!(c, b'\t' | b'\r' | 0x0b | 0x0c)) || c == 0x7f)
            {
                return Err(PolicyError {
                    line,
                    kind: PolicyErrorKind::ControlByte { byte },
                });
            }
            let content = match raw.iter().position(|&c| c == b'#') {
                Some(at) => raw.get(..at).unwrap_or_default(),
                None => raw,
            };
            b.line(&fields(content))
                .map_err(|kind| PolicyError { line, kind })?;
        }
        let Some(quorum) = b.quorum else {
            return Err(PolicyError {
                line: 0,
                kind: PolicyErrorKind::NoQuorum,
            });
        };
        b.policy.quorum = quorum;
        Ok(b.policy)
    }

    /// The trusted logs, in file order.
    pub fn logs(&self) -> &[Log] {
        &self.logs
    }
    /// The witnesses, in file order.
    pub fn witnesses(&self) -> &[Witness] {
        &self.witnesses
    }
    /// The groups, in file order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }
    /// What must be met.
    pub fn quorum(&self) -> Member {
        self.quorum
    }

    /// The log with this key hash.
    pub fn log(&self, key_hash: &KeyHash) -> Option<&Log> {
        self.logs.iter().find(|l| l.key_hash == *key_hash)
    }
    /// The witness with this key hash, with its index.
    pub fn witness(&self, key_hash: &KeyHash) -> Option<(usize, &Witness)> {
        self.witnesses
            .iter()
            .enumerate()
            .find(|(_, w)| w.key_hash == *key_hash)
    }

    /// Whether the witnesses marked in `cosigned` (by index in [`Self::witnesses`]) meet the
    /// quorum. Each group is judged once, in file order (members are always earlier), so the
    /// work is linear in the size of the policy.
    pub fn quorum_met(&self, cosigned: &[bool]) -> bool {
        self.met(cosigned).0
    }

    /// (whether the quorum is met, whether each group is).
    fn met(&self, cosigned: &[bool]) -> (bool, Vec<bool>) {
        let mut groups: Vec<bool> = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let count = g
                .members
                .iter()
                .filter(|m| member_met(**m, cosigned, &groups))
                .count();
            groups.push(count >= g.k);
        }
        (member_met(self.quorum, cosigned, &groups), groups)
    }

    /// A one-line account of the quorum rule and how far `cosigned` got, for error messages:
    /// e.g. `group quorum-rule needs 2 of 3, 1 met: poc (cosigned), rgdd (no valid
    /// cosignature), smartit (no valid cosignature)`.
    pub fn explain_quorum(&self, cosigned: &[bool]) -> String {
        let (_, groups) = self.met(cosigned);
        let name = |m: Member| match m {
            Member::None => "none".to_string(),
            Member::Witness(i) => self
                .witnesses
                .get(i)
                .map_or_else(String::new, |w| format!("witness {:?}", w.name)),
            Member::Group(i) => self
                .groups
                .get(i)
                .map_or_else(String::new, |g| format!("group {:?}", g.name)),
        };
        let state = |m: Member| match m {
            Member::Witness(_) if member_met(m, cosigned, &groups) => "cosigned",
            Member::Witness(_) => "no valid cosignature",
            _ if member_met(m, cosigned, &groups) => "met",
            _ => "not met",
        };
        match self.quorum {
            Member::Group(i) => {
                let Some(g) = self.groups.get(i) else {
                    return String::new();
                };
                let met = g
                    .members
                    .iter()
                    .filter(|m| member_met(**m, cosigned, &groups))
                    .count();
                let members: Vec<String> = g
                    .members
                    .iter()
                    .map(|m| format!("{} ({})", name(*m), state(*m)))
                    .collect();
                format!(
                    "quorum group {:?} needs {} of {}, {met} met: {}",
                    g.name,
                    g.k,
                    g.members.len(),
                    members.join(", ")
                )
            }
            m => format!("quorum is {} ({})", name(m), state(m)),
        }
    }
}

fn member_met(m: Member, cosigned: &[bool], groups: &[bool]) -> bool {
    match m {
        Member::None => true,
        Member::Witness(i) => cosigned.get(i).copied().unwrap_or(false),
        Member::Group(i) => groups.get(i).copied().unwrap_or(false),
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Witness(i) => write!(f, "witness #{i}"),
            Self::Group(i) => write!(f, "group #{i}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const K1: &str = "1c25f8a44c635457e2e391d1efbca7d4c2951a0aef06225a881e46b98962ac6c";
    const K2: &str = "28c92a5a3a054d317c86fc2eeb6a7ab2054d6217100d0be67ded5b74323c5806";
    const K3: &str = "f4855a0f46e8a3e23bb40faf260ee57ab8a18249fa402f2ca2d28a60e1a3130e";
    const LOG: &str = "4644af2abd40f4895a003bca350f9d5912ab301a49c77f13e5b6d905c20a5fe6";

    fn parse(s: &str) -> Result<Policy, PolicyError> {
        Policy::parse(s.as_bytes())
    }

    /// stmgr's own test policy (tests/ospkg-sigsum-test, v0.6.6), byte for byte.
    #[test]
    fn the_reference_test_policy_parses() {
        let p = parse(&format!(
            "log {LOG} https://test.sigsum.org/barreleye\n\
             witness poc.sigsum.org/nisse {K1}\n\
             witness rgdd.se/poc-witness  {K2}\n\
             witness witness1.smartit.nu/witness1 {K3}\n\
             \n\
             group  quorum-rule 2 poc.sigsum.org/nisse rgdd.se/poc-witness witness1.smartit.nu/witness1\n\
             quorum quorum-rule\n"
        ))
        .unwrap();
        assert_eq!(p.logs().len(), 1);
        assert_eq!(
            p.logs()[0].url.as_deref(),
            Some("https://test.sigsum.org/barreleye")
        );
        assert_eq!(p.witnesses().len(), 3);
        assert_eq!(p.quorum(), Member::Group(0));
        assert!(!p.quorum_met(&[true, false, false]));
        assert!(p.quorum_met(&[true, false, true]));
        assert_eq!(
            p.explain_quorum(&[true, false, false]),
            "quorum group \"quorum-rule\" needs 2 of 3, 1 met: witness \"poc.sigsum.org/nisse\" \
             (cosigned), witness \"rgdd.se/poc-witness\" (no valid cosignature), witness \
             \"witness1.smartit.nu/witness1\" (no valid cosignature)"
        );
    }

    /// What sigsum-go v0.11.2 accepts and v0.13 does not: trailing comments, CRLF line ends,
    /// VT/FF/non-breaking spaces as separators, a group as member of two groups, uppercase hex,
    /// no final newline, `+2` as a threshold, non-ASCII in comments and names.
    #[test]
    fn what_the_reference_tools_accept_keeps_parsing() {
        let p = parse(&format!(
            "# Policy by Niels M\u{f6}ller\r\n\
             log {} # barreleye\r\n\
             witness w\u{e9}1 {K1} https://w1.example/#about\r\n\
             witness w2\u{a0}{K2}\x0b\r\n\
             \t witness w3 {K3}\x0c\r\n\
             group a any w\u{e9}1 w2\r\n\
             group b +2 a w3\r\n\
             group c 1 a\r\n\
             group top all b c\r\n\
             quorum top",
            LOG.to_uppercase()
        ))
        .unwrap();
        assert_eq!(p.witnesses()[0].name, "w\u{e9}1");
        assert_eq!(p.witnesses()[1].name, "w2");
        assert_eq!(p.logs()[0].url, None);
        assert_eq!(p.groups()[1].k, 2);
        // w1 and w3: a, b (a + w3), c (a) and top all met.
        assert!(p.quorum_met(&[true, false, true]));
        assert!(!p.quorum_met(&[true, true, false]));
        assert!(!p.quorum_met(&[false, false, true]));
    }

    #[test]
    fn quorum_none_needs_no_cosignature_and_a_witness_can_be_the_quorum() {
        let p = parse(&format!("log {LOG}\nquorum none\n")).unwrap();
        assert!(p.quorum_met(&[]));
        assert_eq!(p.explain_quorum(&[]), "quorum is none (met)");
        let p = parse(&format!("log {LOG}\nwitness w {K1}\nquorum w\n")).unwrap();
        assert!(!p.quorum_met(&[false]));
        assert!(p.quorum_met(&[true]));
        let p = parse(&format!("witness w {K1}\ngroup g 1 none w\nquorum g\n")).unwrap();
        assert!(
            p.quorum_met(&[false]),
            "none is a member that is always met"
        );
        // No log at all parses (every proof then names an unknown log), as in v0.11.2.
        assert!(parse("quorum none").unwrap().logs().is_empty());
    }

    #[test]
    fn rejections_name_the_line_and_the_reason() {
        let w = format!("witness w1 {K1}\nwitness w2 {K2}\n");
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "no quorum line"),
            ("# only a comment\n".into(), "no quorum line"),
            (format!("log {LOG}\n"), "no quorum line"),
            (
                "quorum none\nquorum none\n".into(),
                "line 2: quorum can only be set once",
            ),
            ("logs abc\n".into(), "line 1: unknown keyword \"logs\""),
            ("log\n".into(), "line 1: log line: a public key"),
            (format!("log {LOG} url extra\n"), "line 1: log line"),
            (
                "log 1234\n".into(),
                "line 1: log public key: 2 bytes of hex, expected 64 hex digits",
            ),
            (format!("log {}\n", &LOG[1..]), "log public key"),
            (
                format!("log {}zz\n", &LOG[2..]),
                "not a hex digit at character 63",
            ),
            (
                format!("log {LOG}\nlog {LOG}\n"),
                "line 2: duplicate log: key 4644af2a",
            ),
            (
                format!("witness w1 {K1}\nwitness w2 {K1}\n"),
                "line 2: duplicate witness: key 1c25f8a4",
            ),
            (
                format!("witness w1 {K1}\nwitness w1 {K2}\n"),
                "line 2: duplicate name \"w1\"",
            ),
            (
                format!("witness none {K1}\n"),
                "line 1: duplicate name \"none\"",
            ),
            (
                "witness w1\n".to_string(),
                "witness line: a name and a public key",
            ),
            (
                format!("{w}group w1 1 w2\n"),
                "line 3: duplicate name \"w1\"",
            ),
            (
                format!("{w}group g 1\n"),
                "line 3: group line: a name, a threshold",
            ),
            (
                format!("{w}group g 3 w1 w2\n"),
                "threshold \"3\" is not all, any or a number from 1 to 2",
            ),
            (format!("{w}group g 0 w1 w2\n"), "threshold \"0\""),
            (format!("{w}group g -1 w1 w2\n"), "threshold \"-1\""),
            (format!("{w}group g two w1 w2\n"), "threshold \"two\""),
            (
                format!("{w}group g 1 w1 w3\n"),
                "line 3: undefined name \"w3\"",
            ),
            (
                format!("{w}quorum g\ngroup g 1 w1\n"),
                "line 3: undefined name \"g\"",
            ),
            (
                format!("{w}group g 2 w1 w1 w2\n"),
                "line 3: group \"g\" lists \"w1\" twice",
            ),
            (format!("{w}quorum\n"), "quorum line: exactly one"),
            (format!("{w}quorum w1 w2\n"), "quorum line"),
            ("log \0\n".into(), "line 1: control byte 0x00"),
            (
                "quorum none\n\x1b[31m\n".into(),
                "line 2: control byte 0x1b",
            ),
            ("quorum none # \x7f\n".into(), "control byte 0x7f"),
        ];
        for (input, want) in cases {
            let e = parse(&input).unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
        let big = vec![b'#'; MAX_POLICY_BYTES + 1];
        let e = Policy::parse(&big).unwrap_err();
        assert!(
            matches!(e.kind, PolicyErrorKind::TooLarge { .. }) && e.line == 0,
            "{e}"
        );
    }

    #[test]
    fn limits_allow_at_least_32_of_each_and_stop_at_64() {
        let key = |i: usize| {
            let mut k = [0u8; 32];
            k[0] = u8::try_from(i).unwrap();
            k[1] = 0xee;
            codec::hex(&k)
        };
        let mut s = String::new();
        for i in 0..MAX_ENTRIES {
            s.push_str(&format!("log {}\nwitness w{i} {}\n", key(i), key(i + 100)));
        }
        for i in 0..MAX_ENTRIES {
            s.push_str(&format!("group g{i} 1 w{i}\n"));
        }
        let ok = format!("{s}quorum g0\n");
        let p = parse(&ok).unwrap();
        assert_eq!(
            (p.logs().len(), p.witnesses().len(), p.groups().len()),
            (64, 64, 64)
        );
        for (extra, what) in [
            (format!("log {}\n", key(200)), "more than 64 logs"),
            (
                format!("witness x {}\n", key(201)),
                "more than 64 witnesses",
            ),
            ("group x 1 w0\n".to_string(), "more than 64 groups"),
        ] {
            let e = parse(&format!("{s}{extra}quorum none\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn fields_split_like_go_strings_fields() {
        let f = |b: &[u8]| {
            fields(b)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            f(b"  a\tb  c "),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(f("a\u{a0}b\u{85}c\u{3000}d".as_bytes()).len(), 4);
        // Invalid UTF-8 bytes stay inside their field.
        assert_eq!(
            f(b"a\xffb \xfe"),
            vec![b"a\xffb".to_vec(), b"\xfe".to_vec()]
        );
        assert!(f(b"").is_empty());
    }
}
