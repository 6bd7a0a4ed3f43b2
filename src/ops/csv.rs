//! CSV cells for exports read by people in spreadsheets (RFC 4180 quoting).

/// One CSV cell. Text that came from a router or a user (host names, descriptions) may
/// start with `=`, `+`, `-` or `@`, which spreadsheets evaluate as a formula; a leading
/// quote keeps it text. Numbers such as `-3` are left as they are.
pub fn cell(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn quotes_separators_and_neutralises_formulas_but_not_numbers() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("+cmd"), "'+cmd");
        assert_eq!(cell("-3"), "-3");
        assert_eq!(cell("-2.5"), "-2.5");
    }
}
