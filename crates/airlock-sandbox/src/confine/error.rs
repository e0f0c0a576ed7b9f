//! A failed setup step, named so that refusals and `sandbox doctor` can say
//! which protection is missing.

use std::ffi::CString;

#[derive(Debug)]
pub(crate) struct SetupError {
    pub(crate) step: String,
    pub(crate) error: String,
}

pub(crate) fn fail(step: impl Into<String>, error: impl std::fmt::Display) -> SetupError {
    SetupError {
        step: step.into(),
        error: error.to_string(),
    }
}

/// The step that failed with the error of a `rustix` call.
pub(crate) fn failed(step: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> SetupError {
    move |e| fail(step, std::io::Error::from(e))
}

pub(crate) fn errno(step: impl Into<String>) -> SetupError {
    fail(step, std::io::Error::last_os_error())
}

pub(crate) fn check(rc: libc::c_int, step: impl Into<String>) -> Result<(), SetupError> {
    if rc < 0 { Err(errno(step)) } else { Ok(()) }
}

pub(crate) fn cstr(b: &[u8]) -> Result<CString, SetupError> {
    CString::new(b.to_vec()).map_err(|_| {
        fail(
            "encoding arguments",
            "a NUL byte in an argument, path or variable",
        )
    })
}

impl From<SetupError> for crate::SandboxError {
    fn from(e: SetupError) -> crate::SandboxError {
        crate::SandboxError::Setup {
            step: e.step,
            error: e.error,
        }
    }
}
