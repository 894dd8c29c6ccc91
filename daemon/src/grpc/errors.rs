//! Engine errors as gRPC statuses: the one place that decides which code a failure gets.
//!
//! A client (and its user) needs to tell apart "you sent something wrong" (INVALID_ARGUMENT),
//! "not now" (FAILED_PRECONDITION), "that name is taken" (ALREADY_EXISTS), "the disk is full"
//! (RESOURCE_EXHAUSTED) and "the device went away" (UNAVAILABLE), so each cause maps to its
//! own code, with the engine's message naming what and why.

use ephysd_drivers::DeviceError;
use ephysd_hdf5::RecordingError;
use tonic::{Code, Status};

use crate::engine::EngineError;
use crate::processing::ProcessingError;

/// The gRPC status a client gets for `e`.
pub fn status_of(e: &EngineError) -> Status {
    Status::new(code_of(e), e.to_string())
}

fn code_of(e: &EngineError) -> Code {
    match e {
        EngineError::InvalidArgument { .. } => Code::InvalidArgument,
        EngineError::RecordingOn(_) => Code::FailedPrecondition,
        EngineError::FileExists { .. } => Code::AlreadyExists,
        EngineError::NoFreeIndex { .. } => Code::ResourceExhausted,
        EngineError::RecordingDirectory { source, .. } => io_code(source),
        EngineError::LowDiskSpace { .. } => Code::ResourceExhausted,
        EngineError::Device(e) => device_code(e),
        EngineError::Recording(e) => recording_code(e),
        EngineError::RecordingEnded(failure) => recording_code(&failure.error),
        EngineError::Spawn { .. } => Code::Internal,
        EngineError::StreamingOn { .. } | EngineError::NotStreaming { .. } => Code::FailedPrecondition,
        EngineError::TimeRangeNotHeld { .. } => Code::OutOfRange,
        EngineError::ReplyTooLarge { .. } => Code::ResourceExhausted,
        EngineError::DeviceUnavailable { .. } | EngineError::Probes(_) => Code::FailedPrecondition,
        EngineError::Processing(e) => processing_code(e),
        EngineError::WrongDevice { .. } => Code::FailedPrecondition,
        EngineError::Control(e) => control_code(e),
        EngineError::Sinaps(e) => sinaps_code(e),
    }
}

fn sinaps_code(e: &ephysd_drivers::SinapsError) -> Code {
    use ephysd_drivers::SinapsError;
    match e {
        SinapsError::InvalidArgument { .. } | SinapsError::Bitfile(_) => Code::InvalidArgument,
        SinapsError::Streaming { .. } | SinapsError::NothingLoaded { .. } => Code::FailedPrecondition,
        SinapsError::Device(d) => device_code(d),
        _ => Code::Unavailable,
    }
}

fn control_code(e: &ephysd_drivers::ControlError) -> Code {
    use ephysd_drivers::ControlError;
    match e {
        ControlError::OutOfRange { .. } => Code::InvalidArgument,
        ControlError::QueueFull { .. } => Code::ResourceExhausted,
        ControlError::Device(d) => device_code(d),
        _ => Code::FailedPrecondition,
    }
}

fn processing_code(e: &ProcessingError) -> Code {
    match e {
        ProcessingError::Dsp(_) | ProcessingError::Param(_) | ProcessingError::NoSuchChannel { .. } => {
            Code::InvalidArgument
        }
        ProcessingError::Detector(_) => Code::InvalidArgument,
        ProcessingError::NotApplied { .. } => Code::Unavailable,
        ProcessingError::Off => Code::FailedPrecondition,
    }
}

fn device_code(e: &DeviceError) -> Code {
    match e {
        DeviceError::Gone { .. } | DeviceError::Io { .. } => Code::Unavailable,
        _ => Code::FailedPrecondition,
    }
}

fn recording_code(e: &RecordingError) -> Code {
    if e.is_disk_full() {
        return Code::ResourceExhausted;
    }
    match e {
        RecordingError::AlreadyExists { .. } => Code::AlreadyExists,
        RecordingError::FileSizeLimit { .. } => Code::ResourceExhausted,
        RecordingError::InvalidMeta { .. } | RecordingError::InvalidBaseName { .. } => Code::InvalidArgument,
        RecordingError::MissingDirectory { .. } => Code::FailedPrecondition,
        RecordingError::Io { source, .. } => io_code(source),
        _ => Code::Internal,
    }
}

fn io_code(e: &std::io::Error) -> Code {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Code::PermissionDenied,
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => Code::ResourceExhausted,
        ErrorKind::NotFound => Code::FailedPrecondition,
        _ => Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::*;
    use crate::engine::Blocked;

    /// Linux errno values.
    const ENOSPC: i32 = 28;
    const EACCES: i32 = 13;

    fn code(e: EngineError) -> (Code, String) {
        let s = status_of(&e);
        (s.code(), s.message().to_string())
    }

    fn io_recording(errno: i32) -> EngineError {
        EngineError::Recording(RecordingError::Io {
            path: PathBuf::from("/data/r.h5"),
            operation: "write /samples",
            source: io::Error::from_raw_os_error(errno),
        })
    }

    #[test]
    fn sinaps_refusals_are_bad_arguments_or_not_now_and_name_what() {
        use ephysd_drivers::sinaps::{BitfileError, BitfileProblem};
        use ephysd_drivers::SinapsError;
        let (c, m) = code(EngineError::Sinaps(SinapsError::InvalidArgument {
            field: "register_vals[3]".into(),
            value: "40000".into(),
            allowed: "0..=33000".into(),
        }));
        assert_eq!((c, m.as_str()), (Code::InvalidArgument, "register_vals[3] = 40000: allowed 0..=33000"));
        let (c, m) = code(EngineError::Sinaps(SinapsError::Bitfile(BitfileError {
            path: PathBuf::from("/tmp/x.bit"),
            problem: BitfileProblem::NoSyncWord,
        })));
        assert_eq!(c, Code::InvalidArgument);
        assert!(m.contains("/tmp/x.bit") && m.contains("sync word"), "{m}");
        let (c, _) = code(EngineError::Sinaps(SinapsError::NothingLoaded { device: "box".into() }));
        assert_eq!(c, Code::FailedPrecondition);
        let gone = DeviceError::Gone { device: "box".into(), reason: "unplugged".into() };
        assert_eq!(code(EngineError::Sinaps(SinapsError::Device(gone))).0, Code::Unavailable);
    }

    #[test]
    fn each_cause_gets_its_own_code_and_a_message_naming_it() {
        let (c, m) = code(EngineError::InvalidArgument {
            field: "baseFileName".into(),
            value: "a/b".into(),
            allowed: "no separators".into(),
        });
        assert_eq!(c, Code::InvalidArgument);
        assert!(m.contains("baseFileName") && m.contains("a/b"), "{m}");

        assert_eq!(code(EngineError::RecordingOn(Blocked::StopStream)).0, Code::FailedPrecondition);
        let (c, m) = code(EngineError::StreamingOn { action: "changing the sample rate" });
        assert_eq!(c, Code::FailedPrecondition);
        assert!(m.contains("stop streaming before changing the sample rate"), "{m}");
        assert_eq!(code(EngineError::NotStreaming { needed: "reading signals" }).0, Code::FailedPrecondition);
        let (c, m) = code(EngineError::TimeRangeNotHeld { asked: "[0, 1) s".into(), held: "[5, 65) s".into() });
        assert_eq!(c, Code::OutOfRange);
        assert!(m.contains("[0, 1) s") && m.contains("[5, 65) s"), "{m}");
        assert_eq!(code(EngineError::ReplyTooLarge { bytes: 2, limit: 1 }).0, Code::ResourceExhausted);
        let (c, m) =
            code(EngineError::DeviceUnavailable { backbone: "xdaq-one-rec".into(), reason: "no driver".into() });
        assert_eq!(c, Code::FailedPrecondition);
        assert!(m.contains("xdaq-one-rec") && m.contains("left as it was"), "{m}");

        let (c, m) = code(EngineError::FileExists { path: "/data/r.h5".into() });
        assert_eq!(c, Code::AlreadyExists);
        assert!(m.contains("/data/r.h5") && m.contains("never overwritten"), "{m}");
        assert_eq!(
            code(EngineError::Recording(RecordingError::AlreadyExists { path: "/data/r.h5".into() })).0,
            Code::AlreadyExists
        );

        let (c, m) = code(EngineError::Processing(ProcessingError::NoSuchChannel { channel: 2000, last: 1023 }));
        assert_eq!(c, Code::InvalidArgument);
        assert!(m.contains("ntvChanIdx 2000") && m.contains("0..=1023"), "{m}");
        assert_eq!(code(EngineError::Processing(ProcessingError::Off)).0, Code::FailedPrecondition);

        let (c, m) = code(io_recording(ENOSPC));
        assert_eq!(c, Code::ResourceExhausted, "disk full: {m}");
        assert!(m.contains("/data/r.h5"), "{m}");
        assert_eq!(code(io_recording(EACCES)).0, Code::PermissionDenied);

        let gone = DeviceError::Gone { device: "XDAQ One".into(), reason: "USB device disconnected".into() };
        let (c, m) = code(EngineError::Device(gone));
        assert_eq!(c, Code::Unavailable);
        assert!(m.contains("XDAQ One") && m.contains("disconnected"), "{m}");
    }
}
