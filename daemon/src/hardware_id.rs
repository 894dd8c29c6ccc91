//! A stable identifier of this machine, reported as the "hardware UUID" Allego clients use to
//! identify the server they talk to.
//!
//! Derived from the systemd machine id (stable across reboots, unique per installation) so no
//! state has to be stored; hashed so the raw machine id is never exposed over the network.

use uuid::Uuid;

const NAMESPACE: Uuid = Uuid::from_u128(0x6570_6879_7364_4e00_8000_0000_6877_6964);

/// The UUID for this machine, or one derived from the host name if no machine id exists.
pub fn hardware_uuid() -> String {
    let seed = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "ephysd".to_string());
    Uuid::new_v5(&NAMESPACE, seed.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_uuid_is_stable_and_well_formed() {
        let a = super::hardware_uuid();
        assert_eq!(a, super::hardware_uuid());
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
