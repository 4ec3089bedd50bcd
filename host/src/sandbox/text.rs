//! Caps on guest-controlled text: every string the host keeps or prints
//! (failure and panic messages, log lines, progress notes) is cut to a
//! documented size, keeping its head and saying how much was cut.

/// Largest failure message kept from a guest: a `TaskError`'s message or a
/// panic message (64 KiB). The rest is cut (see [`cap`]).
pub const MAX_ERROR_BYTES: usize = 64 << 10;

/// Largest structured log line kept (16 KiB); longer lines are cut, and still
/// count against the attempt's log budget ([`Limits::max_log_bytes`]).
///
/// [`Limits::max_log_bytes`]: super::Limits::max_log_bytes
pub const MAX_LOG_LINE_BYTES: usize = 16 << 10;

/// Largest progress note kept (1 KiB).
pub const MAX_PROGRESS_NOTE_BYTES: usize = 1 << 10;

/// `text` cut to at most `max` bytes of its head (at a character boundary),
/// followed by a marker saying how many bytes were cut, when it is longer.
/// The marker is at most 40 bytes beyond `max`.
///
/// ```
/// use corral::sandbox::cap_text;
/// assert_eq!(cap_text("short".into(), 10), "short");
/// assert_eq!(cap_text("0123456789abcdef".into(), 10), "0123456789… [6 of 16 bytes cut]");
/// ```
pub fn cap(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let mut keep = max;
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    text.truncate(keep);
    text.push_str(&format!("… [{} of {total} bytes cut]", total - keep));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_short_text_and_cuts_long_text_at_a_char_boundary() {
        assert_eq!(cap("abc".into(), 3), "abc");
        assert_eq!(cap("abcd".into(), 3), "abc… [1 of 4 bytes cut]");
        // "é" is two bytes: the cut may not split it.
        assert_eq!(cap("aéb".into(), 2), "a… [3 of 4 bytes cut]");
        assert_eq!(cap("é".into(), 0), "… [2 of 2 bytes cut]");
        let huge = cap("x".repeat(10 << 20), MAX_ERROR_BYTES);
        assert!(huge.len() <= MAX_ERROR_BYTES + 40, "{}", huge.len());
        assert!(huge.ends_with(&format!(
            "[{} of {} bytes cut]",
            (10 << 20) - MAX_ERROR_BYTES,
            10 << 20
        )));
    }
}
