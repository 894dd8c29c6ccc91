//! What the writer's integration tests share.

use ephysd_hdf5::RecordingMeta;

/// Valid recording metadata for `channels` channels at `fps` frames per second.
pub fn meta(channels: usize, fps: f64) -> RecordingMeta {
    RecordingMeta {
        software_version: "ephysd 9.9.9-test".into(),
        device: "unit-test-device".into(),
        ..RecordingMeta::new(fps, channels, 0.195)
    }
}
