//! Channels as clients see them: which are selected, which colour group each belongs to, and
//! the probe map of each port.
//!
//! Allego names every channel by its signal type and its native index within that type
//! (amplifier channel 12, digital-in line 0). Selection and groups are client state kept by
//! the daemon so every client sees the same view; they survive stream restarts and a new
//! sample rate, and start afresh when the device is reopened in another mode.

use std::sync::Arc;

use ephysd_drivers::DeviceDescription;

use super::{Engine, EngineError};
use crate::config::{ProbeChoice, ProbeKeys};
use crate::probe_map::ProbeMap;

/// The colour group of a channel that has none (Allego's marker).
pub const NO_GROUP: i32 = i32::MAX;

/// Allego's four signal types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// Electrode (amplifier) channels.
    Amplifier,
    /// Board analog inputs (Allego's AUX).
    AnalogIn,
    /// Digital input lines.
    DigitalIn,
    /// Digital output lines.
    DigitalOut,
}

impl SignalKind {
    /// All four, in Allego's order.
    pub const ALL: [SignalKind; 4] =
        [SignalKind::Amplifier, SignalKind::AnalogIn, SignalKind::DigitalIn, SignalKind::DigitalOut];

    /// Channels of this kind the device has.
    pub fn count(self, d: &DeviceDescription) -> usize {
        match self {
            SignalKind::Amplifier => d.layout.amplifier_channels,
            SignalKind::AnalogIn => d.layout.analog_in_channels,
            SignalKind::DigitalIn => d.digital_in_channels,
            SignalKind::DigitalOut => d.digital_out_channels,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Selection and colour group of every channel of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KindState {
    selected: Vec<bool>,
    group: Vec<i32>,
}

/// Selection and colour groups of every channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTable {
    kinds: [KindState; 4],
}

/// A change to the channel table, as `UpdateSignalGroup` asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelUpdate {
    /// Select (`add`) or deselect the listed channels.
    Select { kind: SignalKind, channels: Vec<usize>, add: bool },
    /// Put the listed channels into a new colour group (`add`; unselected ones are skipped),
    /// or take them out of theirs.
    Group { kind: SignalKind, channels: Vec<usize>, add: bool },
}

impl ChannelTable {
    /// Every channel of `d` selected, none in a group.
    pub fn new(d: &DeviceDescription) -> Self {
        let kind = |k: SignalKind| KindState { selected: vec![true; k.count(d)], group: vec![NO_GROUP; k.count(d)] };
        ChannelTable { kinds: SignalKind::ALL.map(kind) }
    }

    /// Channels of `kind`.
    pub fn count(&self, kind: SignalKind) -> usize {
        self.kinds[kind.index()].selected.len()
    }

    /// Whether channel `ntv` of `kind` is selected.
    pub fn is_selected(&self, kind: SignalKind, ntv: usize) -> bool {
        self.kinds[kind.index()].selected.get(ntv).copied().unwrap_or(false)
    }

    /// The colour group of channel `ntv` of `kind` ([`NO_GROUP`] for none).
    pub fn group(&self, kind: SignalKind, ntv: usize) -> i32 {
        self.kinds[kind.index()].group.get(ntv).copied().unwrap_or(NO_GROUP)
    }

    /// The selected channels of `kind`, in index order.
    pub fn selected(&self, kind: SignalKind) -> Vec<usize> {
        let k = &self.kinds[kind.index()];
        (0..k.selected.len()).filter(|&i| k.selected[i]).collect()
    }

    /// Applies `update`, or changes nothing if any listed channel does not exist. `field`
    /// names the list in errors.
    pub fn apply(&mut self, update: &ChannelUpdate, field: &str) -> Result<(), EngineError> {
        let (ChannelUpdate::Select { kind, channels, .. } | ChannelUpdate::Group { kind, channels, .. }) = update;
        let count = self.count(*kind);
        if let Some((i, &bad)) = channels.iter().enumerate().find(|(_, &c)| c >= count) {
            return Err(EngineError::InvalidArgument {
                field: format!("{field}[{i}]"),
                value: bad.to_string(),
                allowed: match count {
                    0 => format!("none: the device has no {kind:?} channels"),
                    n => format!("allowed 0..={} ({kind:?} channels of this device)", n - 1),
                },
            });
        }
        match update {
            ChannelUpdate::Select { kind, channels, add } => {
                let k = &mut self.kinds[kind.index()];
                for &c in channels {
                    k.selected[c] = *add;
                }
            }
            ChannelUpdate::Group { kind, channels, add: false } => {
                let k = &mut self.kinds[kind.index()];
                for &c in channels {
                    k.group[c] = NO_GROUP;
                }
            }
            ChannelUpdate::Group { kind, channels, add: true } => {
                let members: Vec<usize> = channels.iter().copied().filter(|&c| self.is_selected(*kind, c)).collect();
                if members.is_empty() {
                    return Ok(());
                }
                let next = self.next_group();
                let k = &mut self.kinds[kind.index()];
                for c in members {
                    k.group[c] = next;
                }
            }
        }
        Ok(())
    }

    /// The next free group index: one past the highest in use, from 1.
    fn next_group(&self) -> i32 {
        let highest =
            self.kinds.iter().flat_map(|k| k.group.iter().copied()).filter(|&g| g != NO_GROUP).max().unwrap_or(0);
        highest.saturating_add(1).min(NO_GROUP - 1)
    }
}

/// A `[probes]` key that does not fit the device.
#[derive(Debug, thiserror::Error)]
#[error("config key `probes.{key}` = {value:?}: {reason}")]
pub struct ProbeConfigError {
    /// The key (`port_a` ...).
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// Why it does not fit.
    pub reason: String,
}

/// The probe map of each of `d`'s ports, as the `[probes]` keys choose them.
pub fn resolve_probes(keys: &ProbeKeys, d: &DeviceDescription) -> Result<Vec<Option<ProbeMap>>, ProbeConfigError> {
    d.ports
        .iter()
        .map(|port| {
            let (key, value) = keys.ports()[port.port];
            let error = |reason: String| ProbeConfigError { key, value: value.to_string(), reason };
            let map = match keys.choice(port.port) {
                ProbeChoice::Unknown => return Ok(None),
                ProbeChoice::Device if d.simulated => ProbeMap::simulated_linear(port.channels),
                ProbeChoice::Device => return Ok(None),
                ProbeChoice::Map(name) => crate::probe_map::resolve(&name).map_err(|e| error(e.to_string()))?,
            };
            if let Some(site) = map.sites.iter().find(|s| s.channel >= port.channels) {
                return Err(error(format!(
                    "the map places site {} on channel {}, but port {} has {} channels (0..={})",
                    site.site,
                    site.channel,
                    port.letter(),
                    port.channels,
                    port.channels.saturating_sub(1)
                )));
            }
            Ok(Some(map))
        })
        .collect()
}

impl Engine {
    /// The channel table and probe maps now (never waits for a transition).
    pub fn channels(&self) -> (Arc<ChannelTable>, Arc<Vec<Option<ProbeMap>>>, String) {
        let view = self.view();
        (Arc::clone(&view.channels), Arc::clone(&view.probes), view.dataset_uid.clone())
    }

    /// Applies a selection or group change; `field` names the channel list in errors.
    pub fn update_channels(&self, update: &ChannelUpdate, field: &str) -> Result<(), EngineError> {
        let mut st = self.lock();
        let mut table = (*st.channels).clone();
        table.apply(update, field)?;
        st.channels = Arc::new(table);
        self.publish(&st);
        Ok(())
    }

    /// Looks again at what is plugged into the ports (a board runs its port scan again):
    /// refused while streaming. The triggers
    /// are disabled (their lines may be gone) and the probe maps fitted again; selection and
    /// groups are kept where the channels still exist.
    pub fn scan_ports(&self) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.stream.is_some() {
            return Err(EngineError::StreamingOn { action: "scanning the ports" });
        }
        if !st.description.simulated {
            // A board is brought up again: its port scan finds what is plugged in now.
            let spec = st.device.spec().clone();
            self.reopen_locked(&mut st, &spec, false)?;
            tracing::info!(channels = st.description.amplifier_channels(), "ports scanned");
        }
        st.triggers.clear();
        st.probes = Arc::new(resolve_probes(&st.probe_keys, &st.description).map_err(EngineError::Probes)?);
        self.publish(&st);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephysd_drivers::{open, DeviceSpec};

    fn description() -> DeviceDescription {
        let keys = crate::config::Settings::defaults().device;
        open(&DeviceSpec::from_keys(&keys).unwrap()).unwrap().description().clone()
    }

    #[test]
    fn selection_changes_only_the_listed_channels_and_repeats_are_harmless() {
        let d = description();
        let mut t = ChannelTable::new(&d);
        assert_eq!(t.selected(SignalKind::Amplifier).len(), 64);
        let deselect = ChannelUpdate::Select { kind: SignalKind::Amplifier, channels: vec![3, 5, 3], add: false };
        t.apply(&deselect, "ntvChanIdx").unwrap();
        t.apply(&deselect, "ntvChanIdx").unwrap();
        assert!(!t.is_selected(SignalKind::Amplifier, 3) && !t.is_selected(SignalKind::Amplifier, 5));
        assert_eq!(t.selected(SignalKind::Amplifier).len(), 62);
        assert_eq!(t.selected(SignalKind::DigitalIn).len(), 16, "other kinds untouched");
        t.apply(&ChannelUpdate::Select { kind: SignalKind::Amplifier, channels: vec![], add: true }, "x").unwrap();
        assert_eq!(t.selected(SignalKind::Amplifier).len(), 62, "an empty list is a no-op");
    }

    #[test]
    fn an_unknown_channel_changes_nothing_and_is_named() {
        let d = description();
        let mut t = ChannelTable::new(&d);
        let before = t.clone();
        let e = t
            .apply(
                &ChannelUpdate::Select { kind: SignalKind::AnalogIn, channels: vec![1, 8], add: false },
                "ntvChanIdx",
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("ntvChanIdx[1] = 8: allowed 0..=7"), "{e}");
        assert_eq!(t, before);
    }

    #[test]
    fn each_group_add_takes_the_next_index_and_skips_unselected_channels() {
        let d = description();
        let mut t = ChannelTable::new(&d);
        let amp = SignalKind::Amplifier;
        t.apply(&ChannelUpdate::Select { kind: amp, channels: vec![2], add: false }, "x").unwrap();
        t.apply(&ChannelUpdate::Group { kind: amp, channels: vec![0, 1, 2], add: true }, "x").unwrap();
        t.apply(&ChannelUpdate::Group { kind: SignalKind::DigitalIn, channels: vec![0], add: true }, "x").unwrap();
        t.apply(&ChannelUpdate::Group { kind: amp, channels: vec![2], add: true }, "x").unwrap();
        assert_eq!((t.group(amp, 0), t.group(amp, 1), t.group(amp, 2)), (1, 1, NO_GROUP));
        assert_eq!(t.group(SignalKind::DigitalIn, 0), 2);
        t.apply(&ChannelUpdate::Group { kind: amp, channels: (0..64).collect(), add: false }, "x").unwrap();
        assert_eq!(t.group(amp, 0), NO_GROUP);
        t.apply(&ChannelUpdate::Group { kind: amp, channels: vec![5], add: true }, "x").unwrap();
        assert_eq!(t.group(amp, 5), 3, "indices count on past the highest in use");
    }
}
