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
use super::words::*;

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
            // pcap matches these in 802.2 LLC / SNAP frames too.
            if v <= 1500 || v == 0x809b || v == 0x80f3 {
                return Err(Self::unsupported(
                    t,
                    format!("`ether proto {w}`"),
                    "pktio matches EtherTypes above 0x05dc (1500) in the type field only; \
                     pcap's 802.3 length / LLC SAP and AppleTalk forms are not in its subset",
                ));
            }
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
#[path = "parse_tests.rs"]
mod tests;
