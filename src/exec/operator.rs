//! Who is at the keyboard: `--operator`, else `$USER`.

use std::sync::OnceLock;

static OPERATOR: OnceLock<String> = OnceLock::new();

pub fn set(name: Option<&str>) {
    let name = name
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .or_else(login_name)
        .unwrap_or_else(|| "unknown".into());
    let _ = OPERATOR.set(name);
}

#[must_use]
pub fn current() -> String {
    OPERATOR.get().cloned().unwrap_or_else(|| "unknown".into())
}

fn login_name() -> Option<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; the
    // name is copied out before any other call can overwrite it.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}
