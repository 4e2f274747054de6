//! Phone-number normalization: turns whatever a PBX, an agent or a spreadsheet calls a phone number
//! into one comparable form (E.164), so a ringing caller can be matched to a customer record.
//!
//! Input is messy by nature: separators of every kind, `+`/`00`/trunk-`0` prefixes, full-width digits
//! typed on Chinese keyboards, extensions, `tel:`/`sip:` URIs, labels such as `Mobile:`, and withheld
//! callers. This module does its own tolerant scanning and hands the `phonenumber` crate (Google's
//! libphonenumber metadata) only a clean `+digits` or `digits` string, which keeps the crate away from
//! hostile input and keeps a call fast. Nothing here panics, whatever the input.
//!
//! Decisions worth knowing:
//! - `+00 86 …` is read as `+86 …` (people type both prefixes); a bare `00` followed by a non-zero
//!   digit is an international prefix whatever the default country (the ITU-recommended one).
//! - `(0)` right after a country code (`+86 (0)21 …`, `+44 (0)20 …`) is a trunk prefix and dropped.
//! - Digits without `+` or an international prefix are a national number of the default country,
//!   even when they would be valid after a `+`: `12345678901` is a mistyped Chinese mobile, not
//!   `+1 234 567 8901`. (The default country's own code is recognised: `8613800138000` in CN.)
//! - Up to six digits without a `+` is an internal extension (`1001`), never a customer's number.
//! - A number that cannot be made valid keeps `e164 = None`, `valid = false`; when it is still
//!   plausible (7 to 17 significant digits) `national` carries its digits for fallback matching.

use std::sync::Once;

use phonenumber::country::Id;
use phonenumber::metadata::{DATABASE, Metadata};
use serde::{Deserialize, Serialize};

/// A phone number as given and as understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalized {
    /// The input, untouched.
    pub raw: String,
    /// `+` country code and national significant number, no extension; only when `valid`.
    pub e164: Option<String>,
    /// National significant number digits (no trunk prefix): for valid numbers and for invalid but
    /// plausible ones, so that callers can still fall back to matching on trailing digits.
    pub national: Option<String>,
    /// ISO 3166 alpha-2 region of the number, when known (`None` for non-geographic numbers).
    pub country: Option<String>,
    /// Extension digits (`x123`, `ext. 5`, `#123`, `;ext=9`, `转123`).
    pub extension: Option<String>,
    /// The number is a valid, dialable number by the numbering plan metadata.
    pub valid: bool,
}

impl Normalized {
    fn unusable(raw: &str) -> Self {
        Normalized {
            raw: raw.to_owned(),
            e164: None,
            national: None,
            country: None,
            extension: None,
            valid: false,
        }
    }
}

/// Longest extension we keep; longer digit runs after a marker are a second number, not an extension.
const MAX_EXTENSION_DIGITS: usize = 6;
/// The metadata's name for non-geographic numbering (+800, +882, …).
const NON_GEOGRAPHIC_REGION: &str = "001";
/// Up to this many digits without `+` is a PBX extension or a service short code.
const MAX_INTERNAL_EXTENSION_DIGITS: usize = 6;
/// Fewest significant digits that still make a plausible subscriber number (local numbers without
/// area code are 7 or 8 digits in most plans).
const MIN_PLAUSIBLE_DIGITS: usize = 7;
/// E.164 allows 15 digits; national significant numbers go up to 17 in the metadata.
const MAX_SIGNIFICANT_DIGITS: usize = 17;
/// More digits than this cannot be one number even with prefixes; scanning stops there.
const MAX_SCANNED_DIGITS: usize = 24;

/// The crate keeps its compiled patterns in one LRU cache of 100 entries shared by all regions:
/// numbers from a few dozen countries overflow it, and then nearly every call recompiles
/// patterns (measured: 2 ms per number over 40 countries instead of 4 µs). This is room for the
/// validation patterns of every region; patterns are still compiled only when first used.
const PATTERN_CACHE_CAPACITY: usize = 4096;

fn ensure_pattern_cache_capacity() {
    static ENLARGED: Once = Once::new();
    ENLARGED.call_once(|| {
        // A poisoned lock means a panic inside the crate elsewhere; the small cache still works.
        if let Ok(mut cache) = DATABASE.cache().lock()
            && cache.capacity() < PATTERN_CACHE_CAPACITY
        {
            cache.set_capacity(PATTERN_CACHE_CAPACITY);
        }
    });
}

/// Validates a default-country setting: an ISO 3166 alpha-2 region (any case, surrounding spaces
/// ignored) for which the numbering-plan metadata exists.
pub fn parse_country(code: &str) -> Option<Id> {
    let code = code.trim();
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let id: Id = code.to_ascii_uppercase().parse().ok()?;
    DATABASE.by_id(id.as_ref())?;
    Some(id)
}

/// Normalizes `raw`, reading numbers without an international prefix as numbers of
/// `default_country` (ISO alpha-2; an unknown code means only international numbers can be valid).
pub fn normalize(raw: &str, default_country: &str) -> Normalized {
    normalize_in(raw, parse_country(default_country))
}

/// [`normalize`] with an already validated default region (see [`parse_country`]).
pub fn normalize_in(raw: &str, default_region: Option<Id>) -> Normalized {
    ensure_pattern_cache_capacity();
    if is_withheld(raw) {
        return Normalized::unusable(raw);
    }
    let scanned = scan(raw);
    let mut normalized = Normalized::unusable(raw);
    normalized.extension = scanned.extension;
    if scanned.digits.len() > MAX_SCANNED_DIGITS {
        return normalized;
    }

    let mut international = scanned.international;
    let mut digits = scanned.digits.as_str();
    if international {
        // "+00 86 …": both prefixes typed; the second one adds nothing.
        digits = strip_idd_zeros(digits).unwrap_or(digits);
    } else if let Some(rest) =
        strip_region_idd(digits, default_region).or_else(|| strip_idd_zeros(digits))
    {
        international = true;
        digits = rest;
    }

    if !international && digits.len() <= MAX_INTERNAL_EXTENSION_DIGITS {
        return normalized;
    }

    let parsed = if international {
        phonenumber::parse(None, format!("+{digits}")).ok()
    } else {
        default_region.and_then(|region| phonenumber::parse(Some(region), digits).ok())
    };

    if let Some(number) = &parsed
        && fill_if_valid(&mut normalized, number)
    {
        return normalized;
    }

    let significant = if international {
        parsed.as_ref().and_then(|number| {
            let code = number.code().value().to_string();
            digits.strip_prefix(code.as_str()).map(trim_trunk_zero)
        })
    } else {
        Some(strip_national_prefix(digits, default_region))
    };
    if let Some(significant) =
        significant.filter(|s| (MIN_PLAUSIBLE_DIGITS..=MAX_SIGNIFICANT_DIGITS).contains(&s.len()))
    {
        normalized.national = Some(significant.to_owned());
        normalized.country = parsed
            .as_ref()
            .and_then(|number| number.country().id())
            .or(if international { None } else { default_region })
            .map(|id| id.as_ref().to_owned());
    }
    normalized
}

/// Fills the E.164 form when the number is valid. This is the test of `PhoneNumber::is_valid`
/// (the number matches its region's general pattern and one of its number types) done in an
/// order that is several times faster: every pattern lookup in the crate hashes the whole pattern
/// text under a global lock, and the crate checks the long fixed-line patterns before mobile ones.
fn fill_if_valid(normalized: &mut Normalized, number: &phonenumber::PhoneNumber) -> bool {
    let national = number.national().to_string();
    let code = number.code().value();
    let Some(meta) = metadata_for(code, &national) else {
        return false;
    };
    let valid = has_valid_type(meta, &national);
    if !valid {
        return false;
    }
    // E.164 is exactly "+", the country code and the national significant number (including the
    // leading zeros some plans keep); building it directly skips the crate's formatter.
    normalized.e164 = Some(format!("+{code}{national}"));
    normalized.national = Some(national);
    normalized.country = match meta.id() {
        NON_GEOGRAPHIC_REGION => None,
        region => Some(region.to_owned()),
    };
    normalized.valid = true;
    true
}

/// The region whose numbering plan applies to a country code and national significant number,
/// chosen as the crate's validator does for codes that several regions share (+1, +7, +44, +39, …).
fn metadata_for(code: u16, national: &str) -> Option<&'static Metadata> {
    let regions = DATABASE.region(&code)?;
    if let [only] = regions.as_slice() {
        return if *only == NON_GEOGRAPHIC_REGION {
            DATABASE.by_code(&code)?.into_iter().next()
        } else {
            DATABASE.by_id(*only)
        };
    }
    regions
        .into_iter()
        .filter_map(|region| DATABASE.by_id(region))
        .find(|meta| match meta.leading_digits() {
            Some(pattern) => pattern
                .find(national)
                .is_some_and(|found| found.start() == 0),
            None => has_valid_type(meta, national),
        })
}

fn has_valid_type(meta: &Metadata, national: &str) -> bool {
    let types = meta.descriptors();
    types.general().is_match(national)
        && [
            types.mobile(),
            types.fixed_line(),
            types.toll_free(),
            types.premium_rate(),
            types.shared_cost(),
            types.voip(),
            types.personal_number(),
            types.pager(),
            types.uan(),
            types.voicemail(),
        ]
        .into_iter()
        .flatten()
        .any(|descriptor| descriptor.is_match(national))
}

/// "00" followed by a non-zero digit is the international call prefix.
fn strip_idd_zeros(digits: &str) -> Option<&str> {
    digits
        .strip_prefix("00")
        .filter(|rest| rest.bytes().next().is_some_and(|b| b != b'0'))
}

/// The default region's own international call prefix (011 in NANP, 0011 in AU, 810 in RU, …).
/// Done here rather than by the crate, which mis-strips a trunk digit after an IDD-prefixed
/// number (`011 86 138…` loses the `1` of the mobile prefix).
fn strip_region_idd(digits: &str, region: Option<Id>) -> Option<&str> {
    let idd = region
        .and_then(|id| DATABASE.by_id(id.as_ref()))?
        .international_prefix()?;
    let found = idd.find(digits).filter(|found| found.start() == 0)?;
    digits
        .get(found.end()..)
        .filter(|rest| rest.bytes().next().is_some_and(|b| b != b'0'))
}

/// "+86 0…" typed with the trunk zero after the country code.
fn trim_trunk_zero(digits: &str) -> &str {
    match digits.strip_prefix('0') {
        Some(rest) if rest.len() >= MIN_PLAUSIBLE_DIGITS => rest,
        _ => digits,
    }
}

/// Drops the default region's trunk prefix ("0" in most plans, "1" in NANP) from an invalid
/// national number so its digits line up with the significant digits of valid numbers.
fn strip_national_prefix(digits: &str, region: Option<Id>) -> &str {
    let prefix = region
        .and_then(|id| DATABASE.by_id(id.as_ref()))
        .and_then(|meta| meta.national_prefix());
    match prefix.and_then(|prefix| digits.strip_prefix(prefix)) {
        Some(rest) if rest.len() >= MIN_PLAUSIBLE_DIGITS => rest,
        _ => digits,
    }
}

/// True when the caller presented no number: empty, or the words PBXes and carriers put in its place
/// (`anonymous`, `unknown`, `restricted`, `withheld`, `private`, `unavailable`, 匿名, 未知, …),
/// bare or as the user part of a SIP URI (`"Anonymous" <sip:anonymous@anonymous.invalid>`).
pub fn is_withheld(raw: &str) -> bool {
    const WITHHELD_WORDS: &[&str] = &[
        "anonymous",
        "unknown",
        "restricted",
        "withheld",
        "private",
        "unavailable",
        "not available",
        "blocked",
        "no caller id",
        "nocallerid",
        "unknown caller",
        "private number",
        "匿名",
        "未知",
        "未知号码",
        "隐藏号码",
        "私人号码",
        "无主叫号码",
        "号码隐藏",
    ];
    let user = strip_uri(raw).user;
    let user = user.trim_matches(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"');
    user.is_empty()
        || WITHHELD_WORDS
            .iter()
            .any(|word| user.len() == word.len() && user.eq_ignore_ascii_case(word))
}

/// Masks a number for logs: keeps a leading `+`, a prefix (up to 5 digits, enough for a country
/// code and an operator or area prefix) and the last 4 digits; numbers of up to 6 digits show only
/// their last 2. Separators and any other characters are dropped; input without digits gives `***`.
pub fn mask(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter_map(decimal_digit).collect();
    if digits.is_empty() {
        return "***".to_owned();
    }
    let count = digits.len();
    let (shown_prefix, shown_suffix) = if count <= 6 {
        (0, count.min(2))
    } else {
        (count.saturating_sub(8).min(5), 4)
    };
    let mut masked = String::with_capacity(count + 1);
    if number.trim_start().starts_with(['+', '\u{FF0B}']) {
        masked.push('+');
    }
    for (index, digit) in digits.iter().enumerate() {
        if index < shown_prefix || index >= count - shown_suffix {
            masked.push(*digit);
        } else {
            masked.push('*');
        }
    }
    masked
}

/// The last `n` digits of a number's main part (extension excluded), as a fallback matching key;
/// `None` when `n` is 0 or the number has fewer digits.
pub fn trailing_digits(e164_or_raw: &str, n: usize) -> Option<String> {
    let digits = scan(e164_or_raw).digits;
    if n == 0 || digits.len() < n {
        return None;
    }
    digits.get(digits.len() - n..).map(str::to_owned)
}

/// What the scanner found: ASCII digits of the main number, whether it was written with `+`, and
/// the extension digits.
struct Scanned {
    international: bool,
    digits: String,
    extension: Option<String>,
}

/// The parts of a `tel:`/`sip:` URI (or a bare number) that matter for normalization.
struct UriParts<'a> {
    user: &'a str,
    params: Option<&'a str>,
}

fn strip_uri(raw: &str) -> UriParts<'_> {
    let mut text = raw.trim();
    // name-addr form: `"Display" <sip:user@host>`.
    if let Some(open) = text.find('<')
        && let Some(close) = text[open..].find('>')
    {
        text = text[open + 1..open + close].trim();
    }
    let scheme_end = ["tel:", "sip:", "sips:"].iter().find_map(|scheme| {
        text.get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .map(|_| scheme.len())
    });
    let Some(scheme_end) = scheme_end else {
        return UriParts {
            user: text,
            params: None,
        };
    };
    let mut rest = &text[scheme_end..];
    if let Some(at) = rest.find('@') {
        rest = &rest[..at];
    }
    match rest.split_once(';') {
        Some((user, params)) => UriParts {
            user,
            params: Some(params),
        },
        None => UriParts {
            user: rest,
            params: None,
        },
    }
}

fn scan(raw: &str) -> Scanned {
    let uri = strip_uri(raw);
    let user = match uri.user.get(..3) {
        // Percent-encoded "+" in SIP user parts.
        Some(head) if head.eq_ignore_ascii_case("%2b") => {
            let mut scanned = scan_number(&uri.user[3..]);
            scanned.international = true;
            return apply_uri_params(scanned, uri.params);
        }
        _ => uri.user,
    };
    apply_uri_params(scan_number(user), uri.params)
}

/// RFC 3966 parameters: `ext=` carries the extension, `phone-context=+CC…` the global prefix of a
/// local number.
fn apply_uri_params(mut scanned: Scanned, params: Option<&str>) -> Scanned {
    let Some(params) = params else {
        return scanned;
    };
    for param in params.split(';') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let key = key.trim();
        if key.eq_ignore_ascii_case("ext") {
            let extension: String = value
                .chars()
                .filter_map(decimal_digit)
                .take(MAX_EXTENSION_DIGITS)
                .collect();
            if !extension.is_empty() {
                scanned.extension = Some(extension);
            }
        } else if key.eq_ignore_ascii_case("phone-context")
            && !scanned.international
            && value.trim_start().starts_with('+')
        {
            let mut global: String = value.chars().filter_map(decimal_digit).collect();
            global.push_str(&scanned.digits);
            scanned.digits = global;
            scanned.international = true;
        }
    }
    scanned
}

#[derive(PartialEq)]
enum ScanState {
    Number,
    /// After an extension marker, before its first digit.
    ExtensionMarker,
    Extension,
}

/// Markers that start an extension once some digits of the number were seen. Longest first, since
/// the first match wins. `,` is the dial-string pause that precedes extensions in phone books.
const EXTENSION_MARKERS: &[&str] = &[
    ";ext=",
    "extension",
    "extn",
    "ext",
    "x",
    "#",
    ",",
    "分机号",
    "分机",
    "转",
];

fn scan_number(text: &str) -> Scanned {
    let mut digits = String::with_capacity(20);
    let mut extension = String::new();
    let mut international = false;
    let mut state = ScanState::Number;
    let mut open_paren_at: Option<usize> = None;
    let mut marker_was_comma = false;
    let mut index = 0;

    while let Some(c) = text[index..].chars().next() {
        let width = c.len_utf8();
        if let Some(digit) = decimal_digit(c) {
            match state {
                ScanState::Number => {
                    if digits.len() > MAX_SCANNED_DIGITS {
                        break;
                    }
                    digits.push(digit);
                }
                ScanState::ExtensionMarker | ScanState::Extension => {
                    state = ScanState::Extension;
                    extension.push(digit);
                    if extension.len() > MAX_EXTENSION_DIGITS {
                        break;
                    }
                }
            }
            index += width;
            continue;
        }
        match state {
            ScanState::Extension => break,
            ScanState::ExtensionMarker => {
                if let Some(marker) = extension_marker(&text[index..]) {
                    index += marker.len();
                } else if is_separator(c) || matches!(c, ':' | '：' | '=' | '.') {
                    index += width;
                } else {
                    break;
                }
                continue;
            }
            ScanState::Number => {}
        }

        if matches!(c, '+' | '\u{FF0B}') {
            if digits.is_empty() {
                international = true;
                index += width;
                continue;
            }
            // A second "+" after digits starts another number.
            break;
        }
        if matches!(c, ':' | '：') {
            // Whatever came before a colon was a label ("Phone 2: …"), not the number.
            digits.clear();
            international = false;
            open_paren_at = None;
            index += width;
            continue;
        }
        if matches!(c, '(' | '（') {
            open_paren_at = Some(digits.len());
            index += width;
            continue;
        }
        if matches!(c, ')' | '）') {
            // "(0)" after the country code is the trunk prefix written into an international form.
            if let Some(start) = open_paren_at.take()
                && start > 0
                && digits.get(start..) == Some("0")
            {
                digits.truncate(start);
            }
            index += width;
            continue;
        }
        if matches!(c, '/' | '、' | '|' | ';') && digits.len() >= MIN_PLAUSIBLE_DIGITS {
            // A list separator after a complete-looking number: the rest is another number
            // ("13800138000/13900139000"). Short digit runs before "/" are area codes ("030/1234567").
            if !(c == ';' && extension_marker(&text[index..]).is_some()) {
                break;
            }
        }
        if is_separator(c) {
            index += width;
            continue;
        }
        if digits.is_empty() {
            // Labels and junk before the number ("Tel.", "Mobile", "手机").
            index += width;
            continue;
        }
        match extension_marker(&text[index..]) {
            Some(marker) => {
                marker_was_comma = marker == ",";
                state = ScanState::ExtensionMarker;
                index += marker.len();
            }
            None => break,
        }
    }

    // Digits after a "," that are too long for an extension are a second number, not an extension.
    let extension = if extension.is_empty()
        || extension.len() > MAX_EXTENSION_DIGITS
        || (marker_was_comma && extension.len() >= MIN_PLAUSIBLE_DIGITS)
    {
        None
    } else {
        Some(extension)
    };
    Scanned {
        international,
        digits,
        extension,
    }
}

fn extension_marker(text: &str) -> Option<&'static str> {
    EXTENSION_MARKERS.iter().copied().find(|marker| {
        text.get(..marker.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(marker))
    })
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.' | '/' | '[' | ']' | '~' | '\'' | '"' | '_' | '\u{00AD}' | '\u{2010}'
                ..='\u{2015}'
                    | '\u{200B}'
                    | '\u{2060}'
                    | '\u{2212}'
                    | '\u{2053}'
                    | '\u{223C}'
                    | '\u{30FC}'
                    | '\u{FEFF}'
                    | '\u{FF0D}'
                    | '\u{FF0E}'
                    | '\u{FF0F}'
                    | '\u{FF3B}'
                    | '\u{FF3D}'
                    | '\u{FF5E}'
        )
}

/// Code points of the digit zero in the Unicode decimal-digit blocks people can plausibly type
/// (each block holds 0 to 9 consecutively), ASCII and full-width first for speed.
const DIGIT_ZEROS: &[u32] = &[
    0x0030, 0xFF10, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66,
    0x0CE6, 0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0,
    0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50,
    0xABF0, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6,
];

/// The ASCII digit for any decimal digit in [`DIGIT_ZEROS`]' blocks.
fn decimal_digit(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        return Some(c);
    }
    if c.is_ascii() {
        return None;
    }
    let code = u32::from(c);
    DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .and_then(|&zero| char::from_digit(code - zero, 10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cn(raw: &str) -> Normalized {
        normalize(raw, "CN")
    }

    fn e164(raw: &str, country: &str) -> Option<String> {
        normalize(raw, country).e164
    }

    #[test]
    fn chinese_mobile_in_every_common_form_gives_one_e164() {
        for raw in [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "138.0013.8000",
            "+86 138 0013 8000",
            "+86-138-0013-8000",
            "0086 138 0013 8000",
            "008613800138000",
            "8613800138000",
            "86 138 0013 8000",
            "+0086 13800138000",
            "(+86) 138 0013 8000",
            "＋８６ １３８ ００１３ ８０００",
            "１３８００１３８０００",
            "Tel: 138 0013 8000",
            "Mobile: +86 13800138000",
            "手机：13800138000",
            "'13800138000",
            "=\"13800138000\"",
            "  13800138000  ",
            "13800138000 (张三)",
            "tel:+86-138-0013-8000",
            "sip:+8613800138000@pbx.example.com",
            "sip:%2B8613800138000@pbx.example.com;user=phone",
            "\"Zhang\" <sip:+8613800138000@10.0.0.1>",
            "<sip:13800138000@10.0.0.1:5060>",
        ] {
            let normalized = cn(raw);
            assert_eq!(
                normalized.e164.as_deref(),
                Some("+8613800138000"),
                "input {raw:?}"
            );
            assert!(normalized.valid, "input {raw:?}");
            assert_eq!(normalized.national.as_deref(), Some("13800138000"));
            assert_eq!(normalized.country.as_deref(), Some("CN"));
            assert_eq!(normalized.raw, raw);
        }
    }

    #[test]
    fn chinese_landlines_with_area_codes_and_trunk_zero() {
        for (raw, expected) in [
            ("010 1234 5678", "+861012345678"),
            ("010-12345678", "+861012345678"),
            ("(010) 1234-5678", "+861012345678"),
            ("(021) 6234-5678", "+862162345678"),
            ("（021）62345678", "+862162345678"),
            ("021/62345678", "+862162345678"),
            ("+86 (0)21 6234 5678", "+862162345678"),
            ("+86 021 6234 5678", "+862162345678"),
            ("0086 (0)21 6234 5678", "+862162345678"),
            ("+86 21 6234 5678", "+862162345678"),
        ] {
            assert_eq!(e164(raw, "CN").as_deref(), Some(expected), "input {raw:?}");
        }
    }

    #[test]
    fn european_national_numbers_drop_their_trunk_zero() {
        assert_eq!(e164("030 1234567", "DE").as_deref(), Some("+49301234567"));
        assert_eq!(e164("030/1234567", "DE").as_deref(), Some("+49301234567"));
        assert_eq!(
            e164("+49 (0)30 1234567", "CN").as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            e164("020 7946 0958", "GB").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            e164("+44 (0)20 7946 0958", "DE").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            e164("0044 20 7946 0958", "CN").as_deref(),
            Some("+442079460958")
        );
        let uk = normalize("020 7946 0958", "gb");
        assert_eq!(uk.national.as_deref(), Some("2079460958"));
        assert_eq!(uk.country.as_deref(), Some("GB"));
    }

    #[test]
    fn north_american_idd_and_formats() {
        assert_eq!(
            e164("(650) 253-0000", "US").as_deref(),
            Some("+16502530000")
        );
        assert_eq!(
            e164("1-650-253-0000", "US").as_deref(),
            Some("+16502530000")
        );
        assert_eq!(
            e164("011 86 138 0013 8000", "US").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(
            e164("0011 86 138 0013 8000", "AU").as_deref(),
            Some("+8613800138000")
        );
    }

    #[test]
    fn digits_without_plus_are_never_read_as_a_foreign_number() {
        let typo = cn("12345678901");
        assert!(!typo.valid);
        assert_eq!(typo.national.as_deref(), Some("12345678901"));
        assert_eq!(e164("442079460958", "CN"), None);
        assert_eq!(e164("8613800138000", "GB"), None);
    }

    #[test]
    fn extensions_in_every_notation_are_split_off() {
        for (raw, extension) in [
            ("010 1234 5678 x123", "123"),
            ("010 1234 5678 X 123", "123"),
            ("010 1234 5678 ext. 5", "5"),
            ("010 1234 5678 ext5", "5"),
            ("010 1234 5678 Ext: 77", "77"),
            ("010 1234 5678 extension 42", "42"),
            ("010 1234 5678#123", "123"),
            ("010 1234 5678,123", "123"),
            ("010 1234 5678,,123", "123"),
            ("010-12345678;ext=123", "123"),
            ("010-12345678转123", "123"),
            ("010-12345678 分机 8001", "8001"),
            ("tel:+86-10-1234-5678;ext=9", "9"),
            ("tel:+86-10-1234-5678;isub=1;ext=9", "9"),
        ] {
            let normalized = cn(raw);
            assert_eq!(
                normalized.e164.as_deref(),
                Some("+861012345678"),
                "input {raw:?}"
            );
            assert_eq!(
                normalized.extension.as_deref(),
                Some(extension),
                "input {raw:?}"
            );
        }
    }

    #[test]
    fn tel_uri_with_phone_context_is_completed_with_the_global_prefix() {
        let normalized = cn("tel:6234-5678;phone-context=+86-21");
        assert_eq!(normalized.e164.as_deref(), Some("+862162345678"));
    }

    #[test]
    fn a_second_number_after_a_list_separator_is_ignored() {
        for raw in [
            "13800138000/13900139000",
            "13800138000 / 13900139000",
            "13800138000、13900139000",
            "13800138000;13900139000",
            "13800138000,13900139000",
            "13800138000 +8613900139000",
        ] {
            let normalized = cn(raw);
            assert_eq!(
                normalized.e164.as_deref(),
                Some("+8613800138000"),
                "input {raw:?}"
            );
            assert_eq!(normalized.extension, None, "input {raw:?}");
        }
    }

    #[test]
    fn withheld_and_empty_callers_have_no_number() {
        for raw in [
            "",
            "   ",
            "anonymous",
            "Anonymous",
            "UNKNOWN",
            "restricted",
            "Withheld",
            "private",
            "unavailable",
            "<unknown>",
            "sip:anonymous@anonymous.invalid",
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
            "匿名",
            "未知号码",
        ] {
            assert!(is_withheld(raw), "input {raw:?}");
            let normalized = cn(raw);
            assert!(!normalized.valid);
            assert_eq!(normalized.e164, None);
            assert_eq!(normalized.national, None);
        }
        assert!(!is_withheld("13800138000"));
        assert!(!is_withheld("unknown street 5"));
    }

    #[test]
    fn internal_extensions_are_not_customer_numbers() {
        for raw in [
            "1001",
            "8001",
            "sip:1001@pbx.local",
            "10086",
            "110",
            "95588",
        ] {
            let normalized = cn(raw);
            assert!(!normalized.valid, "input {raw:?}");
            assert_eq!(normalized.e164, None);
            assert_eq!(normalized.national, None, "input {raw:?}");
        }
    }

    #[test]
    fn plausible_invalid_numbers_keep_national_digits_for_fallback_matching() {
        // Right length, no such mobile prefix.
        let wrong_prefix = cn("120 0013 8000");
        assert!(!wrong_prefix.valid);
        assert_eq!(wrong_prefix.e164, None);
        assert_eq!(wrong_prefix.national.as_deref(), Some("12000138000"));
        assert_eq!(wrong_prefix.country.as_deref(), Some("CN"));

        // A local landline written without its area code.
        let local = cn("6234 5678");
        assert!(!local.valid);
        assert_eq!(local.national.as_deref(), Some("62345678"));

        // Trunk zero removed like for valid numbers.
        let trunk = cn("0123 4567890");
        assert!(!trunk.valid);
        assert_eq!(trunk.national.as_deref(), Some("1234567890"));

        // International but invalid: significant digits after the country code.
        let international = cn("+86 120 0013 8000");
        assert!(!international.valid);
        assert_eq!(international.national.as_deref(), Some("12000138000"));
    }

    #[test]
    fn hopeless_input_is_kept_raw_without_national_digits() {
        for raw in [
            "abc",
            "+999 1234",
            "+0",
            "12",
            "0000000000000000000000000000000",
            "--",
        ] {
            let normalized = cn(raw);
            assert!(!normalized.valid, "input {raw:?}");
            assert_eq!(normalized.e164, None, "input {raw:?}");
            assert_eq!(normalized.raw, raw);
        }
        assert_eq!(cn("0000000000000000000000000000000").national, None);
    }

    #[test]
    fn unknown_default_country_still_accepts_international_numbers() {
        assert_eq!(
            e164("+8613800138000", "XX").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(e164("13800138000", "").as_deref(), None);
    }

    #[test]
    fn other_unicode_digits_are_understood() {
        // Arabic-Indic and Devanagari digits.
        assert_eq!(
            e164("+٨٦١٣٨٠٠١٣٨٠٠٠", "CN").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(e164("१३८००१३८०००", "CN").as_deref(), Some("+8613800138000"));
    }

    #[test]
    fn parse_country_accepts_known_regions_in_any_case() {
        assert_eq!(parse_country("CN"), Some(Id::CN));
        assert_eq!(parse_country(" de "), Some(Id::DE));
        assert_eq!(parse_country("gb"), Some(Id::GB));
        assert_eq!(parse_country("UK"), None);
        assert_eq!(parse_country("XX"), None);
        assert_eq!(parse_country("CHN"), None);
        assert_eq!(parse_country(""), None);
        assert_eq!(parse_country("Ｃ"), None);
    }

    #[test]
    fn mask_keeps_prefix_and_last_four_digits() {
        assert_eq!(mask("+8613800138000"), "+86138****8000");
        assert_eq!(mask("13800138000"), "138****8000");
        assert_eq!(mask("+44 20 7946 0958"), "+4420****0958");
        assert_eq!(mask("6234 5678"), "****5678");
        assert_eq!(mask("1234567"), "***4567");
        assert_eq!(mask("＋８６１３８００１３８０００"), "+86138****8000");
        assert_eq!(mask("+861234567890123456"), "+86123*********3456");
    }

    #[test]
    fn mask_shows_only_last_two_digits_of_short_numbers() {
        assert_eq!(mask("1001"), "**01");
        assert_eq!(mask("123456"), "****56");
        assert_eq!(mask("7"), "7");
        assert_eq!(mask("anonymous"), "***");
        assert_eq!(mask(""), "***");
    }

    #[test]
    fn trailing_digits_ignore_separators_and_extensions() {
        assert_eq!(
            trailing_digits("+8613800138000", 8).as_deref(),
            Some("00138000")
        );
        assert_eq!(
            trailing_digits("138-0013-8000 x 12", 8).as_deref(),
            Some("00138000")
        );
        assert_eq!(
            trailing_digits("１３８００１３８０００", 4).as_deref(),
            Some("8000")
        );
        assert_eq!(trailing_digits("1001", 8), None);
        assert_eq!(trailing_digits("1001", 0), None);
        assert_eq!(trailing_digits("", 4), None);
    }

    #[test]
    fn numbers_from_many_countries_fit_in_the_pattern_cache() {
        for raw in [
            "+442079460958",
            "+16502530000",
            "+33142685300",
            "+81312345678",
        ] {
            assert!(cn(raw).valid, "input {raw:?}");
        }
        let cache = DATABASE.cache();
        assert_eq!(cache.lock().unwrap().capacity(), PATTERN_CACHE_CAPACITY);
    }

    /// Release-mode figure for the report: `cargo test --release -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing loop, run by hand in release mode"]
    fn normalize_speed() {
        let inputs = [
            "138 0013 8000",
            "+86 (0)21 6234-5678",
            "010-12345678 ext. 12",
            "Tel: 0086 139 0013 9000",
            "1001",
            "120 0013 8000",
            "sip:+8613800138000@pbx",
            "＋８６ １３８ ００１３ ８０００",
        ];
        let rounds = 1_000_000 / inputs.len();
        let started = std::time::Instant::now();
        let mut valid = 0usize;
        for round in 0..rounds {
            let normalized = normalize(inputs[round % inputs.len()], "CN");
            valid += usize::from(normalized.valid);
        }
        let per_call = started.elapsed() / u32::try_from(rounds).unwrap_or(u32::MAX);
        println!("normalize: {per_call:?} per call over {rounds} calls ({valid} valid)");

        // One number from each of 40 countries: beyond the crate's own pattern cache.
        let countries = [
            "+8613800138000",
            "+442079460958",
            "+49301234567",
            "+16502530000",
            "+33142685300",
            "+390236618300",
            "+81312345678",
            "+82212345678",
            "+61212345678",
            "+5511912345678",
            "+919876543210",
            "+74951234567",
            "+34912345678",
            "+31201234567",
            "+46812345678",
            "+41441234567",
            "+43112345678",
            "+32212345678",
            "+4722123456",
            "+4533123456",
            "+358912345678",
            "+48221234567",
            "+420212345678",
            "+36112345678",
            "+302101234567",
            "+351212345678",
            "+353112345678",
            "+6561234567",
            "+85221234567",
            "+886212345678",
            "+66212345678",
            "+60312345678",
            "+62215123456",
            "+639171234567",
            "+842812345678",
            "+27211234567",
            "+201001234567",
            "+971412345678",
            "+966112345678",
            "+905321234567",
        ];
        let started = std::time::Instant::now();
        for round in 0..rounds {
            normalize(countries[round % countries.len()], "CN");
        }
        let per_call = started.elapsed() / u32::try_from(rounds).unwrap_or(u32::MAX);
        println!("normalize, 40 countries: {per_call:?} per call");
    }

    proptest! {
        #[test]
        fn normalize_never_panics_on_any_string(raw in any::<String>(), country in "[A-Za-z]{0,3}") {
            let normalized = normalize(&raw, &country);
            prop_assert_eq!(&normalized.raw, &raw);
            prop_assert_eq!(normalized.valid, normalized.e164.is_some());
            let _ = mask(&raw);
            let _ = trailing_digits(&raw, 8);
            let _ = is_withheld(&raw);
        }

        #[test]
        fn normalize_never_panics_on_number_like_strings(
            raw in "[+＋(]?[0-9 ()\\-+x#,;.:/]{0,40}",
            country in prop::sample::select(vec!["CN", "DE", "GB", "US", "IT", "AR", "MX", "BR", "IN", "JP", "RU", "FR", "HK", "TW"]),
        ) {
            let normalized = normalize(&raw, country);
            if let Some(e164) = &normalized.e164 {
                prop_assert!(e164.starts_with('+'));
                prop_assert!(e164[1..].bytes().all(|b| b.is_ascii_digit()));
                // Normalizing the E.164 form again gives the same number.
                let again = normalize(e164, "CN");
                prop_assert_eq!(again.e164.as_deref(), Some(e164.as_str()));
            }
        }

        #[test]
        fn validity_agrees_with_the_crate(
            national in "[0-9]{7,13}",
            country in prop::sample::select(vec![Id::CN, Id::DE, Id::GB, Id::US, Id::IT, Id::HK, Id::FR, Id::AU]),
        ) {
            if let Ok(number) = phonenumber::parse(Some(country), &national) {
                let mut normalized = Normalized::unusable(&national);
                prop_assert_eq!(fill_if_valid(&mut normalized, &number), number.is_valid());
            }
        }

        #[test]
        fn mask_never_reveals_more_than_nine_digits(raw in "[+0-9 ]{0,30}") {
            let masked = mask(&raw);
            prop_assert!(masked.chars().filter(char::is_ascii_digit).count() <= 9);
        }
    }
}
