//! What the writer's integration tests share.

use ephysd_hdf5::RecordingMeta;

/// Valid recording metadata for `channels` channels at `fps` frames per second.
pub fn meta(channels: usize, fps: f64) -> RecordingMeta {
    RecordingMeta {
        frames_per_second: fps,
        channel_count: channels,
        uv_per_sample_unit: 0.195,
        application: "ephysd 9.9.9-test".into(),
        device: "unit-test-source".into(),
    }
}
