//! A recursive-descent parser for pktio's pcap-filter subset.
//!
//! Grammar (pcap's precedence: `not` binds tightest; `and` and `or` have
//! *equal* precedence and associate left to right):
//!
//! ```text
//! expr    := unary (("and" | "&&" | "or" | "||") unary)*
//! unary   := ("not" | "!") unary | "(" expr ")" | primitive
//! primitive := "vlan" [ID] | "len" CMP N | "greater" N | "less" N
//!            | "icmp" | "icmp6"
//!            | [proto] [dir] [type] VALUE      (qualifiers, then a value)
//!            | proto                           (ip, ip6, arp, tcp, udp, sctp)
//!            | VALUE                           (the previous primitive's qualifiers)
//! proto   := "ether" | "ip" | "ip6" | "arp" | "tcp" | "udp" | "sctp"
//! dir     := "src" | "dst" | "src or dst" | "src and dst"
//! type    := "host" | "net" | "port" | "portrange" | "proto"
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ast::*;
use super::error::{ParseError, ParseErrorKind};
use super::lex::{tokenize, Tok, Token};

/// Parses `src`; `Ok(None)` when it is empty (only whitespace).
pub(crate) fn parse(src: &str) -> Result<Option<Expr>, ParseError> {
    let tokens = tokenize(src)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        src,
        tokens,
        at: 0,
        last: None,
        depth: 0,
        operators: 0,
    };
    let e = p.expr()?;
    if let Some(t) = p.peek() {
        return Err(p.after_primitive(&t, "`and`, `or` or the end of the filter"));
    }
    Ok(Some(e))
}

/// Nesting deeper than this is refused (the parser recurses).
const MAX_DEPTH: usize = 200;

/// More primitives than this are refused: the programs would not fit the
/// kernel's limits, and every pass over the tree recurses.
pub(crate) const MAX_PRIMITIVES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProtoQ {
    Ether,
    Ip,
    Ip6,
    Arp,
    Tcp,
    Udp,
    Sctp,
}

impl ProtoQ {
    fn name(self) -> &'static str {
        match self {
            ProtoQ::Ether => "ether",
            ProtoQ::Ip => "ip",
            ProtoQ::Ip6 => "ip6",
            ProtoQ::Arp => "arp",
            ProtoQ::Tcp => "tcp",
            ProtoQ::Udp => "udp",
            ProtoQ::Sctp => "sctp",
        }
    }

    fn from_word(w: &str) -> Option<ProtoQ> {
        Some(match w {
            "ether" => ProtoQ::Ether,
            "ip" => ProtoQ::Ip,
            "ip6" => ProtoQ::Ip6,
            "arp" => ProtoQ::Arp,
            "tcp" => ProtoQ::Tcp,
            "udp" => ProtoQ::Udp,
            "sctp" => ProtoQ::Sctp,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TypeQ {
    Host,
    Net,
    Port,
    Portrange,
    Proto,
}

impl TypeQ {
    fn from_word(w: &str) -> Option<TypeQ> {
        Some(match w {
            "host" => TypeQ::Host,
            "net" => TypeQ::Net,
            "port" => TypeQ::Port,
            "portrange" => TypeQ::Portrange,
            "proto" => TypeQ::Proto,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            TypeQ::Host => "host",
            TypeQ::Net => "net",
            TypeQ::Port => "port",
            TypeQ::Portrange => "portrange",
            TypeQ::Proto => "proto",
        }
    }
}

/// The qualifiers of a primitive, kept for abbreviations (`port 80 or 443`).
#[derive(Clone, Copy, Debug)]
struct Qual {
    proto: Option<ProtoQ>,
    dir: Option<Dir>,
    ty: Option<TypeQ>,
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token<'a>>,
    at: usize,
    last: Option<Qual>,
    depth: usize,
    operators: usize,
}

/// Words with a meaning in the grammar (never values).
fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "and"
            | "or"
            | "not"
            | "vlan"
            | "len"
            | "greater"
            | "less"
            | "icmp"
            | "icmp6"
            | "src"
            | "dst"
            | "ether"
            | "ip"
            | "ip6"
            | "arp"
            | "tcp"
            | "udp"
            | "sctp"
            | "host"
            | "net"
            | "port"
            | "portrange"
            | "proto"
    ) || unsupported(w).is_some()
}

/// pcap-filter words outside pktio's subset, with what to do instead.
fn unsupported(w: &str) -> Option<&'static str> {
    Some(match w {
        "gateway" => "it needs host-name and MAC resolution; combine `ether host MAC` and `not host ADDR`",
        "broadcast" => "write `ether dst ff:ff:ff:ff:ff:ff`",
        "multicast" => "not in pktio's subset",
        "mask" => "write the network as CIDR: `net 198.18.0.0/15`",
        "inbound" | "outbound" | "ifname" | "on" | "rnr" | "rulenum" | "reason" | "rset"
        | "ruleset" | "srnr" | "subrulenum" | "action" | "ifindex" => {
            "direction and capture-device qualifiers are not in pktio's subset (an XDP program sees received packets only)"
        }
        "protochain" => "IPv6 extension headers are not walked; use `ip6 proto N` for the first next header",
        "rarp" | "aarp" | "atalk" | "decnet" | "iso" | "clnp" | "esis" | "isis" | "stp" | "ipx"
        | "netbeui" | "lat" | "moprc" | "mopdl" | "sca" | "l1" | "l2" | "iih" | "lsp" | "snp"
        | "csnp" | "psnp" => "this protocol is not in pktio's subset; use `ether proto N` with its EtherType",
        "ah" | "esp" | "igmp" | "igrp" | "pim" | "vrrp" | "carp" => {
            "this protocol name is not in pktio's subset; use `proto N` with its IP protocol number"
        }
        "mpls" | "pppoed" | "pppoes" | "geneve" | "vxlan" => {
            "encapsulations other than one VLAN tag are not in pktio's subset"
        }
        "fddi" | "tr" | "wlan" | "type" | "subtype" | "dir" | "llc" | "radio" | "atm" | "oam"
        | "oamf4" | "metac" | "bcc" | "sc" | "ilmic" | "connectmsg" | "metaconnect" | "lane"
        | "vpi" | "vci" | "fisu" | "lssu" | "msu" | "sio" | "opc" | "dpc" | "sls" | "hfisu"
        | "hlssu" | "hmsu" | "hsio" | "hopc" | "hdpc" | "hsls" | "link" | "slip" | "ppp" => {
            "only Ethernet frames are supported"
        }
        _ => return None,
    })
}

/// A parsed IPv4 value: the octets given (1 to 4) and an explicit prefix.
struct V4Value {
    addr: Ipv4Addr,
    parts: u8,
    prefix: Option<u8>,
}

fn parse_number(w: &str) -> Option<u64> {
    if let Some(hex) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) || w.len() > 19 {
        return None;
    }
    w.parse().ok()
}

fn split_prefix(w: &str) -> (&str, Option<&str>) {
    match w.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (w, None),
    }
}

fn parse_v4(w: &str) -> Option<Result<V4Value, String>> {
    let (addr, prefix) = split_prefix(w);
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() > 4
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    // A single number is an IPv4 value only with a prefix (`net 10/8`).
    if parts.len() == 1 && prefix.is_none() {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        match p.parse::<u8>() {
            Ok(v) => *o = v,
            Err(_) => return Some(Err(format!("`{p}` is not an IPv4 octet (0..=255)"))),
        }
    }
    let prefix = match prefix {
        None => None,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= 32 => Some(n),
            _ => return Some(Err(format!("`/{p}` is not an IPv4 prefix length (0..=32)"))),
        },
    };
    Some(Ok(V4Value {
        addr: Ipv4Addr::from(octets),
        parts: parts.len() as u8,
        prefix,
    }))
}

fn parse_v6(w: &str) -> Option<Result<(Ipv6Addr, Option<u8>), String>> {
    if !w.contains(':') {
        return None;
    }
    let (addr, prefix) = split_prefix(w);
    let addr: Ipv6Addr = addr.parse().ok()?;
    let prefix = match prefix {
        None => None,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= 128 => Some(n),
            _ => {
                return Some(Err(format!(
                    "`/{p}` is not an IPv6 prefix length (0..=128)"
                )))
            }
        },
    };
    Some(Ok((addr, prefix)))
}

/// `02:00:c6:12:00:01`, `02-00-c6-12-00-01` or `0200.c612.0001`.
fn parse_mac(w: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let groups: Vec<&str> = if w.contains(':') {
        w.split(':').collect()
    } else if w.contains('-') {
        w.split('-').collect()
    } else if w.contains('.') {
        let g: Vec<&str> = w.split('.').collect();
        if g.len() != 3 || g.iter().any(|s| s.len() != 4) {
            return None;
        }
        let hex: String = g.concat();
        for (i, m) in mac.iter_mut().enumerate() {
            *m = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        return Some(mac);
    } else {
        return None;
    };
    if groups.len() != 6 {
        return None;
    }
    for (m, g) in mac.iter_mut().zip(groups) {
        if g.is_empty() || g.len() > 2 {
            return None;
        }
        *m = u8::from_str_radix(g, 16).ok()?;
    }
    Some(mac)
}

/// `\tcp`-style (or bare) IP protocol names.
fn ip_proto_name(w: &str) -> Option<u8> {
    Some(match w.trim_start_matches('\\') {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" => 58,
        "pim" => 103,
        "vrrp" => 112,
        "sctp" => 132,
        _ => return None,
    })
}

/// `\ip`-style (or bare) EtherType names.
fn ether_proto_name(w: &str) -> Option<u16> {
    Some(match w.trim_start_matches('\\') {
        "ip" => ETH_P_IP,
        "ip6" => ETH_P_IPV6,
        "arp" => ETH_P_ARP,
        _ => return None,
    })
}

fn v4_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn v6_mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.at).copied()
    }

    fn peek_word(&self) -> Option<&'a str> {
        match self.peek()?.tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn peek_word_at(&self, ahead: usize) -> Option<&'a str> {
        match self.tokens.get(self.at + ahead)?.tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn bump(&mut self) -> Option<Token<'a>> {
        let t = self.peek()?;
        self.at += 1;
        Some(t)
    }

    fn end_pos(&self) -> usize {
        self.src.len()
    }

    fn expected_at(&self, t: &Token<'_>, expected: &str) -> ParseError {
        ParseError::new(
            t.pos,
            t.len,
            ParseErrorKind::Expected {
                expected: expected.into(),
                found: Some(t.text(self.src).into()),
            },
        )
    }

    /// The error for an unexpected token after a complete primitive: names
    /// an unsupported pcap word (`net … mask …`), else says what was expected.
    fn after_primitive(&self, t: &Token<'_>, expected: &str) -> ParseError {
        if let Tok::Word(w) = t.tok {
            if let Some(note) = unsupported(w) {
                return Self::unsupported(t, format!("`{w}`"), note);
            }
        }
        self.expected_at(t, expected)
    }

    fn expected_end(&self, expected: &str) -> ParseError {
        ParseError::new(
            self.end_pos(),
            0,
            ParseErrorKind::Expected {
                expected: expected.into(),
                found: None,
            },
        )
    }

    fn expected_next(&self, expected: &str) -> ParseError {
        match self.peek() {
            Some(t) => self.expected_at(&t, expected),
            None => self.expected_end(expected),
        }
    }

    fn invalid(t: &Token<'_>, src: &str, why: impl Into<String>) -> ParseError {
        ParseError::new(
            t.pos,
            t.len,
            ParseErrorKind::Invalid {
                value: t.text(src).into(),
                why: why.into(),
            },
        )
    }

    fn unsupported(t: &Token<'_>, what: String, note: &'static str) -> ParseError {
        ParseError::new(t.pos, t.len, ParseErrorKind::Unsupported { what, note })
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        let mut left = self.unary()?;
        loop {
            match self.peek().map(|t| t.tok) {
                Some(Tok::Word("and") | Tok::AndAnd) => {
                    self.count_operand()?;
                    self.bump();
                    let right = self.unary()?;
                    left = left.and(right);
                }
                Some(Tok::Word("or") | Tok::OrOr) => {
                    self.count_operand()?;
                    self.bump();
                    let right = self.unary()?;
                    left = left.or(right);
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(left)
    }

    /// Counts a binary operator (one more primitive follows).
    fn count_operand(&mut self) -> Result<(), ParseError> {
        self.operators += 1;
        if self.operators >= MAX_PRIMITIVES {
            let t = self.peek();
            return Err(ParseError::new(
                t.map_or(self.end_pos(), |t| t.pos),
                t.map_or(0, |t| t.len),
                ParseErrorKind::Invalid {
                    value: t.map_or("", |t| t.text(self.src)).into(),
                    why: format!("a filter has at most {MAX_PRIMITIVES} primitives"),
                },
            ));
        }
        Ok(())
    }

    fn too_deep(&self) -> ParseError {
        let t = self.peek();
        ParseError::new(
            t.map_or(self.end_pos(), |t| t.pos),
            t.map_or(0, |t| t.len),
            ParseErrorKind::Invalid {
                value: t.map_or("", |t| t.text(self.src)).into(),
                why: format!("the filter nests deeper than {MAX_DEPTH} levels"),
            },
        )
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek().map(|t| t.tok) {
            Some(Tok::Word("not") | Tok::Bang) => {
                self.bump();
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.too_deep());
                }
                let e = self.unary()?;
                self.depth -= 1;
                Ok(!e)
            }
            Some(Tok::LParen) => {
                let open = self.bump().map_or(0, |t| t.pos);
                let e = self.expr()?;
                match self.peek() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => {
                        self.bump();
                        Ok(e)
                    }
                    Some(t) => Err(self.after_primitive(
                        &t,
                        &format!("`)` to close the `(` at byte {open} (or `and`, `or`)"),
                    )),
                    None => Err(self.expected_end(&format!(
                        "`)` to close the `(` at byte {open} (or `and`, `or`)"
                    ))),
                }
            }
            Some(_) => self.primitive(),
            None => Err(self.expected_end("a primitive (e.g. `tcp`, `host ADDR`, `port N`)")),
        }
    }

    fn number(&mut self, what: &str, max: u64) -> Result<(u64, Token<'a>), ParseError> {
        let Some(t) = self.peek() else {
            return Err(self.expected_end(what));
        };
        let Tok::Word(w) = t.tok else {
            return Err(self.expected_at(&t, what));
        };
        let Some(v) = parse_number(w) else {
            return Err(self.expected_at(&t, what));
        };
        if v > max {
            return Err(Self::invalid(
                &t,
                self.src,
                format!("{what} must be at most {max}"),
            ));
        }
        self.bump();
        Ok((v, t))
    }

    fn primitive(&mut self) -> Result<Expr, ParseError> {
        let Some(t) = self.peek() else {
            return Err(self.expected_end("a primitive"));
        };
        let Tok::Word(w) = t.tok else {
            return Err(self.expected_at(&t, "a primitive (e.g. `tcp`, `host ADDR`, `port N`)"));
        };
        if let Some(note) = unsupported(w) {
            return Err(Self::unsupported(&t, format!("the primitive `{w}`"), note));
        }
        match w {
            "vlan" => {
                self.bump();
                if self.peek_word().and_then(parse_number).is_some() {
                    let (id, _) = self.number("a VLAN ID (0..=4095)", 4095)?;
                    return Ok(Expr::Prim(Primitive::Vlan(Some(id as u16))));
                }
                Ok(Expr::Prim(Primitive::Vlan(None)))
            }
            "len" => {
                self.bump();
                let op = match self.peek() {
                    Some(Token {
                        tok: Tok::Cmp(op), ..
                    }) => {
                        self.bump();
                        op
                    }
                    _ => {
                        return Err(self.expected_next(
                            "a comparison after `len` (`<`, `<=`, `>`, `>=`, `==`, `!=`)",
                        ))
                    }
                };
                let (v, _) = self.number("a length in bytes", u64::from(u32::MAX))?;
                Ok(Expr::Prim(Primitive::Len {
                    op,
                    value: v as u32,
                }))
            }
            "greater" | "less" => {
                self.bump();
                let (v, _) = self.number("a length in bytes", u64::from(u32::MAX))?;
                let op = if w == "greater" { CmpOp::Ge } else { CmpOp::Le };
                Ok(Expr::Prim(Primitive::Len {
                    op,
                    value: v as u32,
                }))
            }
            "icmp" => {
                self.bump();
                Ok(Expr::Prim(Primitive::Proto {
                    family: Family::V4,
                    proto: 1,
                }))
            }
            "icmp6" => {
                self.bump();
                Ok(Expr::Prim(Primitive::Proto {
                    family: Family::V6,
                    proto: 58,
                }))
            }
            _ if ProtoQ::from_word(w).is_some()
                || TypeQ::from_word(w).is_some()
                || w == "src"
                || w == "dst" =>
            {
                self.qualified()
            }
            _ if is_keyword(w) => Err(self.expected_at(&t, "a primitive")),
            _ => {
                // A value on its own: the previous primitive's qualifiers.
                match self.last {
                    Some(q) => self.value(q),
                    None if parse_v4(w).is_some_and(|v| v.is_ok())
                        || parse_v6(w).is_some_and(|v| v.is_ok()) =>
                    {
                        self.value(Qual {
                            proto: None,
                            dir: None,
                            ty: None,
                        })
                    }
                    None if parse_number(w).is_some() => Err(self.expected_at(
                        &t,
                        "a primitive (a number needs a qualifier before it: `port N`, `proto N`, `vlan N`, `len >= N`)",
                    )),
                    None => Err(self.unknown_word(&t, w)),
                }
            }
        }
    }

    fn unknown_word(&self, t: &Token<'_>, w: &str) -> ParseError {
        if w.contains('.') && w.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Self::unsupported(
                t,
                format!("the host name `{w}`"),
                "pktio does not resolve names: give an IPv4 or IPv6 address",
            );
        }
        self.expected_at(
            t,
            "a primitive (ether, vlan, ip, ip6, arp, tcp, udp, sctp, icmp, icmp6, host, net, \
             port, portrange, proto, len, greater, less)",
        )
    }

    fn qualified(&mut self) -> Result<Expr, ParseError> {
        let mut q = Qual {
            proto: None,
            dir: None,
            ty: None,
        };
        if let Some(p) = self.peek_word().and_then(ProtoQ::from_word) {
            q.proto = Some(p);
            self.bump();
        }
        if let Some(w @ ("src" | "dst")) = self.peek_word() {
            self.bump();
            let first = if w == "src" { Dir::Src } else { Dir::Dst };
            let other = if w == "src" { "dst" } else { "src" };
            q.dir = Some(first);
            // `src or dst`, `src and dst` (and the other way round).
            if let (Some(conj @ ("or" | "and")), Some(o)) = (self.peek_word(), self.peek_word_at(1))
            {
                if o == other {
                    self.bump();
                    self.bump();
                    q.dir = Some(if conj == "or" { Dir::Either } else { Dir::Both });
                }
            }
        }
        if let Some(ty) = self.peek_word().and_then(TypeQ::from_word) {
            q.ty = Some(ty);
            self.bump();
        }
        if q.dir.is_none() && q.ty.is_none() {
            // A protocol on its own, unless a value follows (`ip 198.18.0.1`).
            let value_follows = self.peek_word().is_some_and(|w| !is_keyword(w));
            if !value_follows {
                let Some(p) = q.proto else {
                    return Err(self.expected_next("a primitive"));
                };
                return match p {
                    ProtoQ::Ether => {
                        Err(self.expected_next("`src`, `dst`, `host` or `proto` after `ether`"))
                    }
                    ProtoQ::Ip => Ok(Expr::Prim(Primitive::EtherType(ETH_P_IP))),
                    ProtoQ::Ip6 => Ok(Expr::Prim(Primitive::EtherType(ETH_P_IPV6))),
                    ProtoQ::Arp => Ok(Expr::Prim(Primitive::EtherType(ETH_P_ARP))),
                    ProtoQ::Tcp | ProtoQ::Udp | ProtoQ::Sctp => Ok(Expr::Prim(Primitive::Proto {
                        family: Family::Any,
                        proto: match p {
                            ProtoQ::Tcp => 6,
                            ProtoQ::Udp => 17,
                            _ => 132,
                        },
                    })),
                };
            }
        }
        self.value(q)
    }

    /// Parses the value of a primitive with qualifiers `q`.
    fn value(&mut self, q: Qual) -> Result<Expr, ParseError> {
        let Some(t) = self.peek() else {
            return Err(self.expected_end(match q.ty {
                Some(TypeQ::Port) => "a port number",
                Some(TypeQ::Portrange) => "a port range like `1024-2047`",
                Some(TypeQ::Proto) => "a protocol number or name",
                Some(TypeQ::Net) => "a network like `198.18.0.0/15`",
                _ if q.proto == Some(ProtoQ::Ether) => "a MAC address",
                _ => "an address",
            }));
        };
        let Tok::Word(w) = t.tok else {
            return Err(self.expected_at(&t, "a value"));
        };
        let proto_name = q.ty == Some(TypeQ::Proto)
            && (ip_proto_name(w).is_some() || ether_proto_name(w).is_some());
        if is_keyword(w) && !proto_name {
            let what = match q.ty {
                Some(ty) => format!("a value after `{}`", ty.name()),
                None => "a value".into(),
            };
            return Err(self.expected_at(&t, &what));
        }
        // Infer the type when only a protocol/direction was given.
        let ty = match q.ty {
            Some(ty) => ty,
            None => {
                if matches!(q.proto, Some(ProtoQ::Tcp | ProtoQ::Udp | ProtoQ::Sctp))
                    && parse_number(w).is_some()
                {
                    TypeQ::Port
                } else if w.contains('/') {
                    TypeQ::Net
                } else {
                    TypeQ::Host
                }
            }
        };
        let q = Qual { ty: Some(ty), ..q };
        let prim = match ty {
            TypeQ::Proto => self.proto_value(&q, &t, w)?,
            TypeQ::Host | TypeQ::Net => self.addr_value(&q, ty, &t, w)?,
            TypeQ::Port | TypeQ::Portrange => self.port_value(&q, ty, &t, w)?,
        };
        self.bump();
        self.last = Some(q);
        Ok(Expr::Prim(prim))
    }

    fn proto_value(&self, q: &Qual, t: &Token<'_>, w: &str) -> Result<Primitive, ParseError> {
        if let Some(d) = q.dir {
            return Err(Self::invalid(
                t,
                self.src,
                format!("`{d} proto` is not valid: `proto` takes no direction"),
            ));
        }
        if q.proto == Some(ProtoQ::Ether) {
            let v = match parse_number(w).or_else(|| ether_proto_name(w).map(u64::from)) {
                Some(v) if v <= 0xffff => v as u16,
                Some(_) => {
                    return Err(Self::invalid(t, self.src, "an EtherType is at most 0xffff"))
                }
                None => {
                    return Err(self.expected_at(
                        t,
                        "an EtherType number (e.g. 0x88cc) or `\\ip`, `\\ip6`, `\\arp`",
                    ))
                }
            };
            return Ok(Primitive::EtherType(v));
        }
        let family = match q.proto {
            None => Family::Any,
            Some(ProtoQ::Ip) => Family::V4,
            Some(ProtoQ::Ip6) => Family::V6,
            Some(p) => {
                return Err(Self::invalid(
                    t,
                    self.src,
                    format!(
                        "`{} proto` is not valid: use `proto`, `ip proto` or `ip6 proto`",
                        p.name()
                    ),
                ))
            }
        };
        let proto = match parse_number(w).or_else(|| ip_proto_name(w).map(u64::from)) {
            Some(v) if v <= 255 => v as u8,
            Some(_) => {
                return Err(Self::invalid(
                    t,
                    self.src,
                    "an IP protocol number is at most 255",
                ))
            }
            None => {
                return Err(self.expected_at(
                    t,
                    "an IP protocol number (0..=255) or name (`\\tcp`, `\\udp`, `\\icmp`, …)",
                ))
            }
        };
        Ok(Primitive::Proto { family, proto })
    }

    fn addr_value(
        &self,
        q: &Qual,
        ty: TypeQ,
        t: &Token<'_>,
        w: &str,
    ) -> Result<Primitive, ParseError> {
        let dir = q.dir.unwrap_or(Dir::Either);
        let bad = |why: String| Err(Self::invalid(t, self.src, why));
        if q.proto == Some(ProtoQ::Ether) {
            if ty == TypeQ::Net {
                return bad("`ether net` is not valid: use `ether host MAC`".into());
            }
            return match parse_mac(w) {
                Some(mac) => Ok(Primitive::Ether { dir, mac }),
                None => Err(self.expected_at(t, "a MAC address like 02:00:c6:12:00:01")),
            };
        }
        let scope = match q.proto {
            None => V4Scope::IpOrArp,
            Some(ProtoQ::Ip) => V4Scope::Ip,
            Some(ProtoQ::Arp) => V4Scope::Arp,
            Some(ProtoQ::Ip6) => V4Scope::Ip, // checked below: IPv6 only
            Some(p) => {
                return bad(format!(
                    "`{} {}` is not valid: write `{} and {} ADDR`",
                    p.name(),
                    ty.name(),
                    p.name(),
                    ty.name()
                ))
            }
        };
        if parse_mac(w).is_some() && !w.contains("::") && w.split(':').count() == 6 {
            return bad("a MAC address needs `ether host`".into());
        }
        if let Some(v4) = parse_v4(w) {
            let v4 = v4.map_err(|why| Self::invalid(t, self.src, why))?;
            if q.proto == Some(ProtoQ::Ip6) {
                return bad("`ip6` with an IPv4 address: use `ip` or no qualifier".into());
            }
            let prefix = match (ty, v4.prefix) {
                (TypeQ::Host, Some(_)) => {
                    return bad("a host has no prefix length: use `net ADDR/LEN`".into())
                }
                (TypeQ::Host, None) if v4.parts != 4 => {
                    return bad(
                        "a host address has four parts; for a network use `net` (`net 198.18`)"
                            .into(),
                    )
                }
                (TypeQ::Host, None) => 32,
                (_, Some(p)) => p,
                (_, None) => v4.parts * 8,
            };
            let a = u32::from(v4.addr);
            if a & !v4_mask(prefix) != 0 {
                return bad(format!(
                    "bits outside the /{prefix} prefix are set (the network is {}/{prefix})",
                    Ipv4Addr::from(a & v4_mask(prefix))
                ));
            }
            return Ok(Primitive::Net {
                dir,
                net: IpNet::V4 {
                    addr: v4.addr,
                    prefix,
                    scope,
                },
            });
        }
        if let Some(v6) = parse_v6(w) {
            let (addr, p) = v6.map_err(|why| Self::invalid(t, self.src, why))?;
            if matches!(q.proto, Some(ProtoQ::Ip | ProtoQ::Arp)) {
                return bad(format!(
                    "`{}` with an IPv6 address: use `ip6` or no qualifier",
                    q.proto.map_or("", ProtoQ::name)
                ));
            }
            let prefix = match (ty, p) {
                (TypeQ::Host, Some(_)) => {
                    return bad("a host has no prefix length: use `net ADDR/LEN`".into())
                }
                (_, Some(p)) => p,
                (_, None) => 128,
            };
            let a = u128::from(addr);
            if a & !v6_mask(prefix) != 0 {
                return bad(format!(
                    "bits outside the /{prefix} prefix are set (the network is {}/{prefix})",
                    Ipv6Addr::from(a & v6_mask(prefix))
                ));
            }
            return Ok(Primitive::Net {
                dir,
                net: IpNet::V6 { addr, prefix },
            });
        }
        if w.bytes().any(|b| b.is_ascii_alphabetic()) && parse_number(w).is_none() {
            return Err(Self::unsupported(
                t,
                format!("the host name `{w}`"),
                "pktio does not resolve names: give an IPv4 or IPv6 address",
            ));
        }
        Err(self.expected_at(
            t,
            if ty == TypeQ::Net {
                "a network like 198.18.0.0/15 or 2001:db8::/32"
            } else {
                "an IPv4 or IPv6 address"
            },
        ))
    }

    fn port_value(
        &self,
        q: &Qual,
        ty: TypeQ,
        t: &Token<'_>,
        w: &str,
    ) -> Result<Primitive, ParseError> {
        let dir = q.dir.unwrap_or(Dir::Either);
        let proto = match q.proto {
            None => PortProto::Any,
            Some(ProtoQ::Tcp) => PortProto::Tcp,
            Some(ProtoQ::Udp) => PortProto::Udp,
            Some(ProtoQ::Sctp) => PortProto::Sctp,
            Some(p) => {
                return Err(Self::invalid(
                    t,
                    self.src,
                    format!(
                    "`{} {}` is not valid: ports belong to tcp, udp or sctp (write `{} and {} …`)",
                    p.name(),
                    ty.name(),
                    p.name(),
                    ty.name()
                ),
                ))
            }
        };
        let port = |s: &str| -> Result<u16, ParseError> {
            match parse_number(s) {
                Some(v) if v <= 65535 => Ok(v as u16),
                Some(_) => Err(Self::invalid(t, self.src, "a port is 0..=65535")),
                None if s.bytes().any(|b| b.is_ascii_alphabetic()) => Err(Self::unsupported(
                    t,
                    format!("the service name `{s}`"),
                    "pktio does not look up service names: give the port number",
                )),
                None => Err(self.expected_at(t, "a port number")),
            }
        };
        if ty == TypeQ::Port {
            if w.contains('-') && w.split('-').all(|p| parse_number(p).is_some()) {
                return Err(Self::invalid(
                    t,
                    self.src,
                    "a range of ports needs `portrange`",
                ));
            }
            let p = port(w)?;
            return Ok(Primitive::Port {
                proto,
                dir,
                lo: p,
                hi: p,
            });
        }
        let Some((a, b)) = w.split_once('-') else {
            return Err(self.expected_at(t, "a port range like `1024-2047`"));
        };
        let (a, b) = (port(a)?, port(b)?);
        // pcap accepts the bounds in either order.
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        Ok(Primitive::Port { proto, dir, lo, hi })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse(s)
            .unwrap_or_else(|e| panic!("{s:?}: {e}\n{}", e.render(s)))
            .unwrap()
    }

    fn err(s: &str) -> ParseError {
        match parse(s) {
            Err(e) => e,
            Ok(e) => panic!("{s:?} parsed as {e:?}"),
        }
    }

    fn prim(e: Expr) -> Primitive {
        match e {
            Expr::Prim(p) => p,
            other => panic!("not a primitive: {other}"),
        }
    }

    #[test]
    fn primitives() {
        use Primitive as P;
        let v4 = |a: [u8; 4], prefix, scope| IpNet::V4 {
            addr: Ipv4Addr::from(a),
            prefix,
            scope,
        };
        let cases: Vec<(&str, Primitive)> = vec![
            (
                "ether src 02:00:c6:12:00:01",
                P::Ether {
                    dir: Dir::Src,
                    mac: [2, 0, 0xc6, 0x12, 0, 1],
                },
            ),
            (
                "ether host 0200.c612.0001",
                P::Ether {
                    dir: Dir::Either,
                    mac: [2, 0, 0xc6, 0x12, 0, 1],
                },
            ),
            (
                "ether dst ff-ff-ff-ff-ff-ff",
                P::Ether {
                    dir: Dir::Dst,
                    mac: [0xff; 6],
                },
            ),
            ("vlan", P::Vlan(None)),
            ("vlan 100", P::Vlan(Some(100))),
            ("ip", P::EtherType(ETH_P_IP)),
            ("ip6", P::EtherType(ETH_P_IPV6)),
            ("arp", P::EtherType(ETH_P_ARP)),
            ("ether proto 0x88cc", P::EtherType(0x88cc)),
            ("ether proto \\ip6", P::EtherType(ETH_P_IPV6)),
            (
                "tcp",
                P::Proto {
                    family: Family::Any,
                    proto: 6,
                },
            ),
            (
                "icmp",
                P::Proto {
                    family: Family::V4,
                    proto: 1,
                },
            ),
            (
                "icmp6",
                P::Proto {
                    family: Family::V6,
                    proto: 58,
                },
            ),
            (
                "proto 47",
                P::Proto {
                    family: Family::Any,
                    proto: 47,
                },
            ),
            (
                "ip proto \\udp",
                P::Proto {
                    family: Family::V4,
                    proto: 17,
                },
            ),
            (
                "ip6 proto tcp",
                P::Proto {
                    family: Family::V6,
                    proto: 6,
                },
            ),
            (
                "host 198.18.0.1",
                P::Net {
                    dir: Dir::Either,
                    net: v4([198, 18, 0, 1], 32, V4Scope::IpOrArp),
                },
            ),
            (
                "198.18.0.1",
                P::Net {
                    dir: Dir::Either,
                    net: v4([198, 18, 0, 1], 32, V4Scope::IpOrArp),
                },
            ),
            (
                "ip src host 198.18.0.1",
                P::Net {
                    dir: Dir::Src,
                    net: v4([198, 18, 0, 1], 32, V4Scope::Ip),
                },
            ),
            (
                "arp dst 198.18.0.1",
                P::Net {
                    dir: Dir::Dst,
                    net: v4([198, 18, 0, 1], 32, V4Scope::Arp),
                },
            ),
            (
                "src and dst net 198.18.0.0/15",
                P::Net {
                    dir: Dir::Both,
                    net: v4([198, 18, 0, 0], 15, V4Scope::IpOrArp),
                },
            ),
            (
                "net 198.18",
                P::Net {
                    dir: Dir::Either,
                    net: v4([198, 18, 0, 0], 16, V4Scope::IpOrArp),
                },
            ),
            (
                "dst or src net 10/8",
                P::Net {
                    dir: Dir::Either,
                    net: v4([10, 0, 0, 0], 8, V4Scope::IpOrArp),
                },
            ),
            (
                "ip6 host 2001:db8::1",
                P::Net {
                    dir: Dir::Either,
                    net: IpNet::V6 {
                        addr: "2001:db8::1".parse().unwrap(),
                        prefix: 128,
                    },
                },
            ),
            (
                "src net 2001:db8::/32",
                P::Net {
                    dir: Dir::Src,
                    net: IpNet::V6 {
                        addr: "2001:db8::".parse().unwrap(),
                        prefix: 32,
                    },
                },
            ),
            (
                "port 53",
                P::Port {
                    proto: PortProto::Any,
                    dir: Dir::Either,
                    lo: 53,
                    hi: 53,
                },
            ),
            (
                "udp dst port 4242",
                P::Port {
                    proto: PortProto::Udp,
                    dir: Dir::Dst,
                    lo: 4242,
                    hi: 4242,
                },
            ),
            (
                "tcp src 80",
                P::Port {
                    proto: PortProto::Tcp,
                    dir: Dir::Src,
                    lo: 80,
                    hi: 80,
                },
            ),
            (
                "portrange 2000-1000",
                P::Port {
                    proto: PortProto::Any,
                    dir: Dir::Either,
                    lo: 1000,
                    hi: 2000,
                },
            ),
            (
                "len <= 100",
                P::Len {
                    op: CmpOp::Le,
                    value: 100,
                },
            ),
            (
                "len==0x40",
                P::Len {
                    op: CmpOp::Eq,
                    value: 64,
                },
            ),
            (
                "greater 1000",
                P::Len {
                    op: CmpOp::Ge,
                    value: 1000,
                },
            ),
            (
                "less 60",
                P::Len {
                    op: CmpOp::Le,
                    value: 60,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(prim(p(text)), want, "{text}");
            // The canonical form parses back to the same primitive.
            let canon = want.to_string();
            assert_eq!(prim(p(&canon)), want, "{text} → {canon}");
        }
    }

    #[test]
    fn and_or_have_equal_precedence_left_to_right() {
        // pcap: `a or b and c` is `(a or b) and c`.
        assert_eq!(
            p("tcp or udp and port 53").to_string(),
            "((tcp) or (udp)) and (src or dst port 53)"
        );
        assert_eq!(
            p("tcp or (udp and port 53)").to_string(),
            "(tcp) or ((udp) and (src or dst port 53))"
        );
        assert_eq!(
            p("! tcp && not not udp || arp").to_string(),
            "((not (tcp)) and (not (not (udp)))) or (arp)"
        );
    }

    #[test]
    fn abbreviations_reuse_qualifiers() {
        assert_eq!(
            p("tcp dst port 80 or 8080").to_string(),
            "(tcp dst port 80) or (tcp dst port 8080)"
        );
        assert_eq!(
            p("host 198.18.0.1 and not 198.18.0.2").to_string(),
            "(src or dst host 198.18.0.1) and (not (src or dst host 198.18.0.2))"
        );
    }

    #[test]
    fn errors_have_positions_and_say_what_was_expected() {
        let e = err("udp port foo");
        assert_eq!((e.pos, e.len), (9, 3));
        assert!(e.to_string().contains("service name `foo`"), "{e}");
        assert_eq!(e.render("udp port foo"), "udp port foo\n         ^^^");

        let e = err("tcp and");
        assert_eq!(e.pos, 7);
        assert!(e.to_string().contains("end of the filter"), "{e}");

        let e = err("(tcp or udp");
        assert!(
            e.to_string().contains("`)` to close the `(` at byte 0"),
            "{e}"
        );

        let e = err("tcp udp");
        assert_eq!(e.pos, 4);
        assert!(e.to_string().contains("expected `and`, `or`"), "{e}");

        let e = err("port 70000");
        assert_eq!(e.pos, 5);
        assert!(e.to_string().contains("0..=65535"), "{e}");

        let e = err("vlan 5000");
        assert!(e.to_string().contains("at most 4095"), "{e}");

        let e = err("len 100");
        assert!(e.to_string().contains("comparison after `len`"), "{e}");

        let e = err("host 198.18.0.1/24");
        assert!(e.to_string().contains("use `net"), "{e}");

        let e = err("net 198.18.0.1/15");
        assert!(e.to_string().contains("198.18.0.0/15"), "{e}");

        let e = err("ip6 host 198.18.0.1");
        assert!(e.to_string().contains("`ip6` with an IPv4 address"), "{e}");

        let e = err("host example.com");
        assert!(e.to_string().contains("does not resolve names"), "{e}");

        let e = err("tcp host 198.18.0.1");
        assert!(e.to_string().contains("`tcp and host ADDR`"), "{e}");

        let e = err("ether 198.18.0.1");
        assert!(e.to_string().contains("MAC"), "{e}");
        let e = err("ether");
        assert!(e.to_string().contains("after `ether`"), "{e}");

        let e = err("53");
        assert!(e.to_string().contains("needs a qualifier"), "{e}");
    }

    #[test]
    fn unsupported_primitives_are_named() {
        for (text, name) in [
            ("gateway 198.18.0.1", "`gateway`"),
            ("tcp and broadcast", "`broadcast`"),
            ("ip and multicast", "`multicast`"),
            ("net 198.18.0.0 mask 255.254.0.0", "`mask`"),
            ("inbound", "`inbound`"),
            ("ip6 protochain 6", "`protochain`"),
            ("igmp", "`igmp`"),
            ("mpls 3", "`mpls`"),
            ("tcp[13] & 2 != 0", "accessor"),
        ] {
            let e = err(text);
            assert!(
                matches!(e.kind, ParseErrorKind::Unsupported { .. }),
                "{text}: {e}"
            );
            assert!(e.to_string().contains(name), "{text}: {e}");
        }
        let e = err("net 198.18.0.0 mask 255.254.0.0");
        assert_eq!(e.pos, 15);
    }

    #[test]
    fn empty_filter_is_none() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("  \t ").unwrap(), None);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}tcp{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&deep).is_err());
        let nots = format!("{}tcp", "not ".repeat(10_000));
        assert!(parse(&nots).is_err());
        let ok = format!("{}tcp{}", "(".repeat(50), ")".repeat(50));
        assert!(parse(&ok).is_ok());
        let long = vec!["tcp"; 300].join(" or ");
        assert!(err(&long).to_string().contains("at most 256 primitives"));
        let fits = vec!["tcp"; 256].join(" or ");
        assert_eq!(p(&fits).primitives(), 256);
    }
}
