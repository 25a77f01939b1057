//! Exports read back by parsers that are not ours: the `ical` crate for iCalendar and vCard,
//! Python's `mailbox` module for mbox. Inputs are the simulator's generated items (the same
//! JSON and MIME a backup of the simulator holds) plus fixtures for what the simulator does
//! not generate (every recurrence pattern, Windows zones, odd characters).

mod mbox;
mod names;

use cairn_sim::TenantSpec;
use cairn_sim::tenant::Tenant;

/// A small generated tenant; everything in it is a pure function of the seed.
pub fn tenant() -> Tenant {
    Tenant::new(TenantSpec {
        seed: 7,
        users: 4,
        events_per_mailbox: 40,
        contacts_per_mailbox: 24,
        max_item_size: 512 * 1024,
        ..TenantSpec::default()
    })
}
