//! Resource allocation: packing BARs and bridge windows, bottom-up to size
//! the windows, then top-down from the apertures to place them.

use super::{BridgePlan, Func, Need, Pool, Ranges};
use crate::Error;

/// What an allocated range belongs to.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// The function's BAR, by position in its `bars`.
    Bar(usize),
    /// The bridge's window of the pool being laid out.
    Window,
}

/// One range to allocate on a bus, and where it landed.
#[derive(Debug, Clone, Copy)]
struct Item {
    size: u64,
    align: u64,
    func: usize,
    slot: Slot,
    addr: u64,
}

/// Rounds `x` up to a multiple of `align`, saturating.
fn align_up(x: u64, align: u64) -> u64 {
    x.checked_next_multiple_of(align).unwrap_or(u64::MAX)
}

/// The `pool` ranges the functions of one bus need: their BARs and their
/// bridges' non-empty windows, largest alignment first (stable, so in
/// discovery order among equals).
fn items(funcs: &[Func], pool: Pool) -> Vec<Item> {
    let mut items = Vec::new();
    for (fi, f) in funcs.iter().enumerate() {
        for (bi, bar) in f.bars.iter().enumerate() {
            if bar.pool == Some(pool) {
                items.push(Item {
                    size: bar.size,
                    align: bar.size,
                    func: fi,
                    slot: Slot::Bar(bi),
                    addr: 0,
                });
            }
        }
        if let Some(need) = f.bridge.as_ref().map(|b| b.need[pool as usize]) {
            if need.size > 0 {
                items.push(Item {
                    size: need.size,
                    align: need.align,
                    func: fi,
                    slot: Slot::Window,
                    addr: 0,
                });
            }
        }
    }
    items.sort_by_key(|i| std::cmp::Reverse(i.align));
    items
}

/// Packs the `pool` ranges of `funcs` from `start`, each naturally aligned,
/// records the addresses in `funcs` and returns the items placed. Addresses
/// saturate instead of overflowing (the caller then finds they do not fit).
fn layout(funcs: &mut [Func], pool: Pool, start: u64) -> Vec<Item> {
    let mut items = items(funcs, pool);
    let mut cursor = start;
    for item in &mut items {
        item.addr = align_up(cursor, item.align);
        cursor = item.addr.saturating_add(item.size);
        let f = &mut funcs[item.func];
        match item.slot {
            Slot::Bar(i) => f.bars[i].addr = Some(item.addr),
            Slot::Window => {
                if let Some(b) = &mut f.bridge {
                    b.window[pool as usize] = Some((item.addr, item.size));
                }
            }
        }
    }
    items
}

/// End (exclusive) of a layout that began at `start`.
fn end(items: &[Item], start: u64) -> u64 {
    items
        .last()
        .map_or(start, |i| i.addr.saturating_add(i.size))
}

/// Computes bridge `b`'s window needs from its (already sized) children:
/// their ranges packed from 0, rounded up to the window granule, aligned
/// to the largest of the granule and the children's alignments.
pub(super) fn size(b: &mut BridgePlan) {
    for pool in Pool::ALL {
        let placed = layout(&mut b.children, pool, 0);
        let Some(align) = placed.iter().map(|i| i.align).max() else {
            b.need[pool as usize] = Need::default();
            continue;
        };
        b.need[pool as usize] = Need {
            size: align_up(end(&placed, 0), pool.granule()),
            align: align.max(pool.granule()),
        };
    }
}

/// Places the root bus's ranges in the apertures `ranges`, then every
/// bridge's children in its windows, recording all addresses in `funcs`.
pub(super) fn place(funcs: &mut [Func], ranges: &Ranges) -> Result<(), Error> {
    for pool in Pool::ALL {
        let (first, last) = ranges[pool as usize].unwrap_or((1, 0));
        let placed = layout(funcs, pool, first);
        let fits = |i: &&Item| i.addr.checked_add(i.size).is_some_and(|e| e - 1 <= last);
        if let Some(bad) = placed.iter().find(|i| !fits(i)) {
            let f = &funcs[bad.func];
            let what = match bad.slot {
                Slot::Bar(i) => format!("BAR {} of {}", f.bars[i].index, f.label()),
                Slot::Window => format!("the {} window of bridge {}", pool.name(), f.label()),
            };
            return Err(Error::ApertureExhausted {
                what,
                size: bad.size,
                aperture: pool.aperture(),
                available: if first <= last {
                    (last - first).saturating_add(1)
                } else {
                    0
                },
                needed: end(&placed, first).saturating_sub(first),
            });
        }
    }
    for f in funcs.iter_mut() {
        if let Some(b) = &mut f.bridge {
            place_below(b);
        }
    }
    Ok(())
}

/// Lays the children of bridge `b` out in its windows, recursively. Window
/// bases are aligned to every child's alignment, so the children land at
/// the offsets sizing found, inside the window.
fn place_below(b: &mut BridgePlan) {
    for pool in Pool::ALL {
        if let Some((base, size)) = b.window[pool as usize] {
            let placed = layout(&mut b.children, pool, base);
            debug_assert!(end(&placed, base) - base <= size);
        }
    }
    for f in &mut b.children {
        if let Some(child) = &mut f.bridge {
            place_below(child);
        }
    }
}
