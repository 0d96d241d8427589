//! Who is at the keyboard: `--operator`, else `$USER`, else the login
//! name of our user id. Resolved once per command and passed along.

use crate::error::Error;

/// The operator's name, refused when it holds a control character: it is
/// journaled, then printed on the terminals of whoever reads the run
/// later, where an escape sequence would rewrite their screen.
pub fn resolve(name: Option<&str>) -> Result<String, Error> {
    let (name, from) = match name {
        Some(name) => (name.to_string(), "`--operator`"),
        None => match std::env::var("USER") {
            Ok(user) => (user, "`$USER`"),
            Err(_) => (
                login_name().unwrap_or_else(|| "unknown".into()),
                "the login name",
            ),
        },
    };
    match name.chars().find(|c| c.is_control()) {
        Some(c) => Err(Error::Usage(format!(
            "{from} holds a control character ({}): an operator's name is printed on \
             terminals and in reports; give a name without one (`--operator NAME`)",
            c.escape_debug()
        ))),
        None => Ok(name),
    }
}

fn login_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `passwd` is plain data; getpwuid_r fills it with pointers
    // into `buf`, which outlives every use of them below.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given; the reentrant
    // call writes only into `entry`, `buf` and `found`.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &raw mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &raw mut found,
        )
    };
    if rc != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string inside `buf`, still alive.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    name.to_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_gets_the_operator_it_names() {
        assert_eq!(resolve(Some("alice")).unwrap(), "alice");
        assert_eq!(resolve(Some("bob")).unwrap(), "bob");
    }

    #[test]
    fn a_name_holding_a_control_character_is_refused_and_the_character_named() {
        for (name, shown) in [
            ("a\u{1b}[2J", r"\u{1b}"),
            ("a\nb", r"\n"),
            ("a\u{9b}", r"\u{9b}"),
        ] {
            let e = resolve(Some(name)).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::INVALID_INPUT);
            assert!(e.to_string().contains(&format!("({shown})")), "{e}");
        }
    }

    #[test]
    fn the_login_name_is_that_of_our_user_id() {
        let expected = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let expected = String::from_utf8(expected.stdout).unwrap();
        assert_eq!(login_name().as_deref(), Some(expected.trim()));
    }
}
