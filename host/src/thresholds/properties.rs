//! Property tests: no threshold text panics the parser.
use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn no_threshold_text_panics(text in "\\PC{0,80}") {
        let _ = Threshold::parse(&text);
    }

    #[test]
    fn threshold_like_text_parses_or_explains(
        metric in "(http_req_duration|http_req_failed|checks|reqs|x[a-z_]{0,8})(\\{[a-z]{1,6}:[^}]{0,8}\\})?",
        aggregation in "(avg|min|max|med|rate|count|p\\([0-9.]{1,5}\\)|p\\(-1\\)|p\\(1e400\\))",
        op in "(<|<=|>|>=|==|!=|=)",
        value in "(-?[0-9]{1,12}(\\.[0-9]{1,4})?|1e400|NaN|inf)",
    ) {
        match Threshold::parse(&format!("{metric}: {aggregation}{op}{value}")) {
            Ok(_) => {}
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }
}
