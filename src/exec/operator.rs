//! Who is at the keyboard: `--operator`, else `$USER`, else the login
//! name of our user id. Resolved once per command and passed along.

#[must_use]
pub fn resolve(name: Option<&str>) -> String {
    name.map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .or_else(login_name)
        .unwrap_or_else(|| "unknown".into())
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
        assert_eq!(resolve(Some("alice")), "alice");
        assert_eq!(resolve(Some("bob")), "bob");
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
