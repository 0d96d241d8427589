//! Probe kinds that speak a protocol, one file each.

pub mod dns;
pub mod ping;
pub mod sip;
pub mod smtp;
pub mod tcp;
pub mod tls;

/// What a server sent, as an operator reads it in a message: control
/// characters escaped (`\r\n` shows), at most 200 characters.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(char::escape_debug)
        .collect();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}
