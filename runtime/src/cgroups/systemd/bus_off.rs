//! The D-Bus client when berth is built without the `systemd` feature:
//! every call is refused with an error that says so. `resolve` refuses the
//! driver first, so create never gets as far as a call.

use super::props::Prop;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("this berth was built without the systemd cgroup driver (cargo feature \"systemd\")")]
    NotBuilt,
    #[error("no D-Bus connection from a process whose children go to another pid namespace")]
    PidNamespace,
    #[error("the user's systemd instance runs in cgroup {actual:?}, not {expected:?} where berth placed the container's cgroup")]
    ManagerCgroup { expected: String, actual: String },
}

impl BusError {
    pub fn name(&self) -> Option<&str> {
        None
    }
}

pub const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
pub const LOAD_FAILED: &str = "org.freedesktop.systemd1.LoadFailed";

pub fn user_address() -> Result<String, BusError> {
    Err(BusError::NotBuilt)
}

pub struct Bus;

impl Bus {
    pub fn system() -> Result<Bus, BusError> {
        Err(BusError::NotBuilt)
    }

    pub fn user(_: u32) -> Result<Bus, BusError> {
        Err(BusError::NotBuilt)
    }

    pub fn manager_cgroup(&self) -> Result<String, BusError> {
        Err(BusError::NotBuilt)
    }

    pub fn attach_processes_to_unit(&self, _: &str, _: &[u32]) -> Result<(), BusError> {
        Err(BusError::NotBuilt)
    }

    pub fn start_transient_unit(&self, _: &str, _: &[Prop]) -> Result<(), BusError> {
        Err(BusError::NotBuilt)
    }

    pub fn stop_unit(&self, _: &str) -> Result<(), BusError> {
        Err(BusError::NotBuilt)
    }

    pub fn version(&self) -> Result<String, BusError> {
        Err(BusError::NotBuilt)
    }

    pub fn reset_failed_unit(&self, _: &str) -> Result<(), BusError> {
        Err(BusError::NotBuilt)
    }

    pub fn set_unit_properties(&self, _: &str, _: &[Prop]) -> Result<(), BusError> {
        Err(BusError::NotBuilt)
    }
}
