//! Undoing the common ways threat reports "defang" addresses so that nobody clicks them:
//! `1[.]1[.]1[.]1`, `1.1.1(.)1`, `8[dot]8[dot]8[dot]8`, `2001:db8[:]:1`, `hxxp://`.

use std::borrow::Cow;

/// Markers rewritten by [`refang`], matched without regard to ASCII case, with their
/// replacement. Only bracketed forms are listed: a bare `dot` or `:` is ordinary text.
const MARKERS: &[(&[u8], &[u8])] = &[
    (b"[.]", b"."),
    (b"(.)", b"."),
    (b"{.}", b"."),
    (b"[dot]", b"."),
    (b"(dot)", b"."),
    (b"{dot}", b"."),
    (b"[:]", b":"),
    (b"(:)", b":"),
    (b"{:}", b":"),
    (b"[://]", b"://"),
    (b"hxxp", b"http"),
];

/// Returns `text` with every defang marker replaced, borrowing it when it has none.
///
/// NOTE: `[::]` is left alone, because it is also the bracketed unspecified IPv6 address
/// (`[::]:80`) and not only a defanged `::`.
pub fn refang(text: &[u8]) -> Cow<'_, [u8]> {
    // Every marker starts with a bracket or `h`; most lines have no bracket at all.
    let may_have_marker = memchr::memchr3(b'[', b'(', b'{', text).is_some()
        || memchr::memchr2(b'h', b'H', text).is_some();
    if !may_have_marker {
        return Cow::Borrowed(text);
    }

    let mut out: Option<Vec<u8>> = None;
    let mut index = 0;
    while index < text.len() {
        let starts_marker = matches!(text[index], b'[' | b'(' | b'{' | b'h' | b'H');
        let found = MARKERS
            .iter()
            .filter(|_| starts_marker)
            .find(|(marker, _)| {
                text.get(index..index + marker.len())
                    .is_some_and(|window| window.eq_ignore_ascii_case(marker))
            });
        match found {
            Some((marker, replacement)) => {
                let out = out.get_or_insert_with(|| text[..index].to_vec());
                out.extend_from_slice(replacement);
                index += marker.len();
            }
            None => {
                if let Some(out) = out.as_mut() {
                    out.push(text[index]);
                }
                index += 1;
            }
        }
    }
    match out {
        Some(rewritten) => Cow::Owned(rewritten),
        None => Cow::Borrowed(text),
    }
}
