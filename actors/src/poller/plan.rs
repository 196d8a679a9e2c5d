//! The request planner: which Modbus reads one poll cycle makes.
//!
//! Tags of one register kind are sorted by address and merged greedily into
//! one read while the merged block stays within the cap and the hole between
//! two tags is at most `max_gap` registers. Scanning left to right and
//! closing a block only when the next tag does not fit gives the fewest
//! requests for each kind.
//!
//! Caps: `max_registers_per_request` for holding and input registers (never
//! above the protocol's 125); 2000 bits for coils and discrete inputs.
//!
//! After exception 0x02 or 0x03 on a merged read the poller reads that block
//! tag by tag and records what it learned in [`PlanHints`]: a tag that fails alone
//! is read alone from then on, and no merged read covers its registers; if
//! every tag reads fine alone, the hole between them is the bad address and
//! no merged read covers it again.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::settings::{DeviceSettings, RegisterKind, TagSettings};

/// The protocol's cap for one register read (function 3/4).
pub const MAX_REGISTERS: u16 = 125;
/// The protocol's cap for one bit read (function 1/2).
pub const MAX_BITS: u16 = 2000;

/// One read of one cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRead {
    /// Which table.
    pub kind: RegisterKind,
    /// First address read.
    pub start: u16,
    /// Registers (or bits) read.
    pub count: u16,
    /// Indices into the device's `tags` this read serves.
    pub tags: Vec<usize>,
}

impl PlannedRead {
    /// The Modbus function code of this read.
    pub fn function_code(&self) -> u8 {
        function_code(self.kind)
    }
}

/// The Modbus read function for a register kind.
pub fn function_code(kind: RegisterKind) -> u8 {
    match kind {
        RegisterKind::Coil => 1,
        RegisterKind::Discrete => 2,
        RegisterKind::Holding => 3,
        RegisterKind::Input => 4,
    }
}

/// The metric label (`function`) for a register kind.
pub fn function_name(kind: RegisterKind) -> &'static str {
    match kind {
        RegisterKind::Coil => "read_coils",
        RegisterKind::Discrete => "read_discrete_inputs",
        RegisterKind::Holding => "read_holding_registers",
        RegisterKind::Input => "read_input_registers",
    }
}

/// What exceptions taught about a device: tags read alone and addresses no
/// merged read may cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanHints {
    /// Tag indices that are read alone.
    pub alone: BTreeSet<usize>,
    /// `(kind, address)` that no merged read may cover.
    pub forbidden: BTreeSet<(RegisterKind, u16)>,
}

impl PlanHints {
    /// From now on `tag` (index `index`) is read alone and no merged read covers it.
    pub fn isolate(&mut self, index: usize, tag: &TagSettings) {
        self.alone.insert(index);
        for a in u32::from(tag.address)..u32::from(tag.address) + u32::from(tag.span()) {
            if let Ok(a) = u16::try_from(a) {
                self.forbidden.insert((tag.register, a));
            }
        }
    }

    fn blocks(&self, kind: RegisterKind, start: u16, end: u32) -> bool {
        let end = u16::try_from(end.saturating_sub(1)).unwrap_or(u16::MAX);
        self.forbidden
            .range((kind, start)..=(kind, end))
            .next()
            .is_some()
    }
}

fn cap(device: &DeviceSettings, kind: RegisterKind) -> u32 {
    if kind.is_bits() {
        u32::from(MAX_BITS)
    } else {
        u32::from(device.max_registers_per_request.clamp(1, MAX_REGISTERS))
    }
}

/// The reads of one cycle, in order of register kind (holding, input,
/// coil, discrete), then of address.
pub fn plan(device: &DeviceSettings, hints: &PlanHints) -> Vec<PlannedRead> {
    let mut order: Vec<usize> = (0..device.tags.len()).collect();
    order.sort_by_key(|&i| {
        let t = &device.tags[i];
        (t.register, t.address, i)
    });
    let mut reads: Vec<PlannedRead> = Vec::new();
    let mut open: Option<PlannedRead> = None;
    for i in order {
        let tag = &device.tags[i];
        if hints.alone.contains(&i) {
            reads.push(single(tag, i));
            continue;
        }
        let end = u32::from(tag.address) + u32::from(tag.span());
        if let Some(block) = open.as_mut() {
            if fits(device, hints, block, tag, end) {
                let block_end = (u32::from(block.start) + u32::from(block.count)).max(end);
                block.count = u16::try_from(block_end - u32::from(block.start)).unwrap_or(u16::MAX);
                block.tags.push(i);
                continue;
            }
        }
        if let Some(done) = open.replace(single(tag, i)) {
            reads.push(done);
        }
    }
    reads.extend(open);
    reads.sort_by_key(|r| (r.kind, r.start));
    reads
}

fn fits(
    device: &DeviceSettings,
    hints: &PlanHints,
    block: &PlannedRead,
    tag: &TagSettings,
    end: u32,
) -> bool {
    let block_end = u32::from(block.start) + u32::from(block.count);
    block.kind == tag.register
        && u32::from(tag.address) <= block_end + u32::from(device.max_gap)
        && block_end.max(end) - u32::from(block.start) <= cap(device, tag.register)
        && !hints.blocks(tag.register, block.start, block_end.max(end))
}

fn single(tag: &TagSettings, index: usize) -> PlannedRead {
    PlannedRead {
        kind: tag.register,
        start: tag.address,
        count: tag.span(),
        tags: vec![index],
    }
}

/// The plan as `ingestor check` prints it: a line naming the device, then
/// one line per read (function, start, count, tags). A device with tags at
/// several intervals gets a line per poll group, its reads under it.
pub fn describe_plan(device: &DeviceSettings) -> String {
    let target = match (&device.address, &device.serial) {
        (Some(a), _) => a.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => "?".into(),
    };
    let groups = crate::poller::group::poll_groups(device);
    let mut out = String::new();
    if let [group] = groups.as_slice() {
        let reads = plan(group, &PlanHints::default());
        let _ = writeln!(
            out,
            "{} ({} unit {}, every {}): {}",
            device.id,
            target,
            device.unit,
            every(group),
            requests(reads.len())
        );
        describe_reads(&mut out, group, &reads, "  ");
        return out;
    }
    let _ = writeln!(
        out,
        "{} ({} unit {}): {} poll groups, one at a time on the connection",
        device.id,
        target,
        device.unit,
        groups.len()
    );
    for group in &groups {
        let reads = plan(group, &PlanHints::default());
        let _ = writeln!(out, "  every {}: {}", every(group), requests(reads.len()));
        describe_reads(&mut out, group, &reads, "    ");
    }
    out
}

fn every(group: &DeviceSettings) -> humantime_serde::re::humantime::FormattedDuration {
    humantime_serde::re::humantime::format_duration(group.poll_interval)
}

fn requests(n: usize) -> String {
    format!("{n} request{} per poll", if n == 1 { "" } else { "s" })
}

fn describe_reads(out: &mut String, group: &DeviceSettings, reads: &[PlannedRead], indent: &str) {
    for r in reads {
        let names: Vec<&str> = r
            .tags
            .iter()
            .map(|&i| group.tags[i].name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "{indent}fc{:02} {:<22} start {:>5}  count {:>4}  tags: {}",
            r.function_code(),
            function_name(r.kind),
            r.start,
            r.count,
            names.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{TagType, WordOrder};

    fn device(tags: Vec<TagSettings>) -> DeviceSettings {
        let toml = "id = \"d\"\naddress = \"127.0.0.1:502\"\n";
        let mut d: DeviceSettings = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}"));
        d.tags = tags;
        d
    }

    fn tag(register: RegisterKind, address: u16, kind: TagType) -> TagSettings {
        TagSettings::bare(register, address, kind, WordOrder::ABCD)
    }

    fn shape(reads: &[PlannedRead]) -> Vec<(RegisterKind, u16, u16, usize)> {
        reads
            .iter()
            .map(|r| (r.kind, r.start, r.count, r.tags.len()))
            .collect()
    }

    use RegisterKind::*;

    #[test]
    fn neighbours_within_max_gap_merge_into_one_read() {
        let d = device(vec![
            tag(Holding, 100, TagType::F32),
            tag(Holding, 112, TagType::U16), // gap of 10 after 100..102
            tag(Holding, 102, TagType::U32),
        ]);
        assert_eq!(
            shape(&plan(&d, &PlanHints::default())),
            vec![(Holding, 100, 13, 3)]
        );
    }

    #[test]
    fn gap_wider_than_max_gap_splits() {
        let d = device(vec![
            tag(Holding, 100, TagType::F32),
            tag(Holding, 113, TagType::U16),
        ]);
        assert_eq!(
            shape(&plan(&d, &PlanHints::default())),
            vec![(Holding, 100, 2, 1), (Holding, 113, 1, 1)]
        );
    }

    #[test]
    fn cap_splits_and_kinds_never_mix() {
        let mut d = device((0..10).map(|i| tag(Input, i * 4, TagType::U64)).collect());
        d.tags.push(tag(Holding, 0, TagType::U16));
        d.tags
            .extend((0..=400).map(|i| tag(Coil, i * 5, TagType::Bool)));
        d.max_registers_per_request = 16;
        let reads = plan(&d, &PlanHints::default());
        assert_eq!(
            shape(&reads),
            vec![
                (Holding, 0, 1, 1),
                (Input, 0, 16, 4),
                (Input, 16, 16, 4),
                (Input, 32, 8, 2),
                (Coil, 0, 1996, 400),
                (Coil, 2000, 1, 1),
            ]
        );
    }

    #[test]
    fn register_cap_never_exceeds_protocol_limit() {
        let mut d = device(
            (0..100)
                .map(|i| tag(Holding, i * 2, TagType::F32))
                .collect(),
        );
        d.max_registers_per_request = 1000;
        let reads = plan(&d, &PlanHints::default());
        assert_eq!(
            shape(&reads),
            vec![(Holding, 0, 124, 62), (Holding, 124, 76, 38)]
        );
    }

    #[test]
    fn bad_tag_is_read_alone_and_neighbours_stay_merged_around_it() {
        let d = device(vec![
            tag(Holding, 0, TagType::U16),
            tag(Holding, 1, TagType::U16),
            tag(Holding, 2, TagType::U16),
            tag(Holding, 3, TagType::U16),
        ]);
        let mut hints = PlanHints::default();
        hints.alone.insert(2);
        hints.forbidden.insert((Holding, 2));
        assert_eq!(
            shape(&plan(&d, &hints)),
            vec![(Holding, 0, 2, 2), (Holding, 2, 1, 1), (Holding, 3, 1, 1)]
        );
    }

    #[test]
    fn bad_address_in_a_hole_is_never_bridged_again() {
        let d = device(vec![
            tag(Holding, 0, TagType::U16),
            tag(Holding, 5, TagType::U16),
        ]);
        let mut hints = PlanHints::default();
        hints.forbidden.insert((Holding, 3));
        assert_eq!(
            shape(&plan(&d, &hints)),
            vec![(Holding, 0, 1, 1), (Holding, 5, 1, 1)]
        );
    }

    #[test]
    fn describe_names_function_start_count_and_tags() {
        let d = device(vec![
            tag(Holding, 100, TagType::F32),
            tag(Coil, 7, TagType::Bool),
        ]);
        let text = describe_plan(&d);
        assert!(
            text.starts_with("d (127.0.0.1:502 unit 1, every 1s): 2 requests per poll"),
            "{text}"
        );
        assert!(
            text.contains("fc03 read_holding_registers start   100  count    2  tags: t100"),
            "{text}"
        );
        assert!(text.contains("fc01 read_coils"), "{text}");
    }

    #[test]
    fn describe_prints_each_poll_group_and_never_merges_across_groups() {
        let mut slow = tag(Holding, 101, TagType::U16);
        slow.poll_interval = Some(std::time::Duration::from_secs(60));
        let d = device(vec![tag(Holding, 100, TagType::U16), slow]);
        let text = describe_plan(&d);
        let want = "d (127.0.0.1:502 unit 1): 2 poll groups, one at a time on the connection\n  \
                    every 1s: 1 request per poll\n    \
                    fc03 read_holding_registers start   100  count    1  tags: t100\n  \
                    every 1m: 1 request per poll\n    \
                    fc03 read_holding_registers start   101  count    1  tags: t101\n";
        assert_eq!(text, want);
    }
}
