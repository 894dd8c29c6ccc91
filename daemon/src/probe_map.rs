//! Probe maps: where each amplifier channel's electrode site sits on the probe, and its shape and
//! area. Allego's `GetSignalGroup` reports this per channel, and a viewer draws the probe from it.
//!
//! A map is a small TOML file (the format is in `probes/README.md`). The maps shipped in `probes/`
//! are compiled in, so a rig PC needs no files beside the binary; any other map is a path. The
//! simulated rig has no file: its geometry follows from its channel count
//! ([`ProbeMap::simulated_linear`]).
//!
//! A map is checked completely when it is read, and every error names the map, the field and what
//! is allowed, because the person reading it is usually editing a TOML file next to a rig, not
//! reading this code.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

/// Most sites (and highest channel + 1) a map may have. Far above any single probe, low enough
/// that a site number typed into the `channel` column, or a stray digit, is caught.
pub const MAX_SITES: usize = 1024;

/// Pitch of the simulated rig's linear shank, µm.
const SIMULATED_PITCH_UM: f64 = 25.0;

/// Site area of the simulated rig, µm² (a 15 µm disc, the common NeuroNexus site).
const SIMULATED_AREA_UM2: f64 = 177.0;

/// The maps shipped in `probes/`: (built-in name = file stem, text). Sorted by name.
const BUILTINS: [(&str, &str); 4] = [
    ("neuronexus-a1x16-5mm-50-177", include_str!("../../probes/neuronexus-a1x16-5mm-50-177.toml")),
    ("neuronexus-a1x32-6mm-50-177", include_str!("../../probes/neuronexus-a1x32-6mm-50-177.toml")),
    ("neuronexus-a1x32-poly2-5mm-50s-177", include_str!("../../probes/neuronexus-a1x32-poly2-5mm-50s-177.toml")),
    ("neuronexus-a4x8-5mm-200-400-177", include_str!("../../probes/neuronexus-a4x8-5mm-200-400-177.toml")),
];

/// The outline of an electrode site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteShape {
    Circle,
    Square,
    Rectangle,
    Polygon,
}

impl SiteShape {
    /// The name used in map files and reported to clients.
    pub fn name(&self) -> &'static str {
        match self {
            SiteShape::Circle => "circle",
            SiteShape::Square => "square",
            SiteShape::Rectangle => "rectangle",
            SiteShape::Polygon => "polygon",
        }
    }
}

/// One electrode site and the amplifier channel that records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Amplifier channel within the port (0-based; the Intan chip channel).
    pub channel: usize,
    /// Site number as printed on the vendor's map (1-based).
    pub site: i32,
    /// Shank index (0-based).
    pub shank: u32,
    /// Position across the shank(s), µm.
    pub x_um: f64,
    /// Height along the shank, growing away from the tip, µm.
    pub y_um: f64,
    /// Position out of the probe's plane, µm (0 for planar probes).
    pub z_um: f64,
    pub shape: SiteShape,
    /// Site area, µm².
    pub area_um2: f64,
}

/// The geometry of one probe: its sites, one per recorded channel, in channel order.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeMap {
    /// Model as the vendor prints it, e.g. `A1x32-6mm-50-177`.
    pub name: String,
    pub vendor: String,
    /// One line; for the shipped maps it also says how channels were assigned.
    pub description: String,
    /// Sorted by channel.
    pub sites: Vec<Site>,
}

/// Why a probe map could not be read. Every variant names the map (`origin`: a path or a built-in
/// name) so the message stands alone in a log.
#[derive(Debug, thiserror::Error)]
pub enum ProbeMapError {
    /// The file could not be read.
    #[error("probe map {origin}: cannot read the file: {source}")]
    Read { origin: String, source: std::io::Error },
    /// Not TOML, or not this format: a syntax error, an unknown or missing field, a wrong type or
    /// an unknown shape. `location` is the line and the field there.
    #[error("probe map {origin}{location}: {message}")]
    Format { origin: String, location: String, message: String },
    /// Well-formed but not a usable map: a value out of range, or a channel or site used twice.
    #[error("probe map {origin}: `{field}` = {value}: {allowed}")]
    Invalid { origin: String, field: String, value: String, allowed: String },
    /// Neither a built-in name nor a file.
    #[error(
        "no probe map `{name}`: it is neither a built-in probe map (built-in: {builtins}) nor a probe map file ({reason})"
    )]
    NotFound { name: String, builtins: String, reason: String },
}

/// A map file as written; [`MapFile::into_map`] checks it and fills in the defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    name: String,
    vendor: String,
    description: String,
    site_shape: Option<SiteShape>,
    site_area_um2: Option<f64>,
    /// Defaulted so that a map without sites is reported as "0 sites" rather than a missing key.
    #[serde(default)]
    sites: Vec<SiteEntry>,
}

/// One `[[sites]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteEntry {
    channel: usize,
    site: i32,
    shank: u32,
    x_um: f64,
    y_um: f64,
    #[serde(default)]
    z_um: f64,
    shape: Option<SiteShape>,
    area_um2: Option<f64>,
}

impl ProbeMap {
    /// Reads a map from TOML text. `origin` (a path or a built-in name) is what errors call it.
    pub fn parse(text: &str, origin: &str) -> Result<ProbeMap, ProbeMapError> {
        let file: MapFile = toml::from_str(text).map_err(|e| format_error(text, origin, &e))?;
        file.into_map(origin)
    }

    /// Reads a map file.
    pub fn load(path: &Path) -> Result<ProbeMap, ProbeMapError> {
        let origin = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ProbeMapError::Read { origin: origin.clone(), source })?;
        ProbeMap::parse(&text, &origin)
    }

    /// The simulated rig's geometry: one linear shank of `channels` sites 25 µm apart, channel 0
    /// nearest the tip (y = 0), site = channel + 1, 177 µm² discs. The simulator treats adjacent
    /// channels as neighbours, so this is its true geometry, not a stand-in.
    pub fn simulated_linear(channels: usize) -> ProbeMap {
        let sites = (0..channels)
            .map(|channel| Site {
                channel,
                site: i32::try_from(channel + 1).unwrap_or(i32::MAX),
                shank: 0,
                x_um: 0.0,
                y_um: channel as f64 * SIMULATED_PITCH_UM,
                z_um: 0.0,
                shape: SiteShape::Circle,
                area_um2: SIMULATED_AREA_UM2,
            })
            .collect();
        ProbeMap {
            name: format!("simulated-linear-{channels}"),
            vendor: "ephysd".to_string(),
            description: format!(
                "Simulated rig: one linear shank, {channels} sites at {SIMULATED_PITCH_UM} um pitch, channel 0 nearest the tip"
            ),
            sites,
        }
    }

    /// The site recorded by `channel`, if the map has one.
    pub fn site_for_channel(&self, channel: usize) -> Option<&Site> {
        self.sites.iter().find(|s| s.channel == channel)
    }

    /// Number of sites (one per recorded channel).
    pub fn channels(&self) -> usize {
        self.sites.len()
    }

    /// Number of shanks: the highest shank index + 1 (shanks are 0-based), 0 without sites.
    pub fn shanks(&self) -> u32 {
        self.sites.iter().map(|s| s.shank.saturating_add(1)).max().unwrap_or(0)
    }

    /// `(x_min, x_max, y_min, y_max)` of the site centres, µm: the frame of a wireframe drawing.
    /// All zero without sites.
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        let Some(first) = self.sites.first() else {
            return (0.0, 0.0, 0.0, 0.0);
        };
        let start = (first.x_um, first.x_um, first.y_um, first.y_um);
        self.sites
            .iter()
            .fold(start, |(x0, x1, y0, y1), s| (x0.min(s.x_um), x1.max(s.x_um), y0.min(s.y_um), y1.max(s.y_um)))
    }
}

impl MapFile {
    /// Checks the whole map and applies the file's defaults to each site; sites end sorted by
    /// channel.
    fn into_map(self, origin: &str) -> Result<ProbeMap, ProbeMapError> {
        if self.name.trim().is_empty() {
            return Err(invalid(
                origin,
                "name",
                format!("{:?}", self.name),
                "allowed: the model as the vendor prints it",
            ));
        }
        if let Some(area) = self.site_area_um2 {
            check_area(origin, "site_area_um2", area)?;
        }
        check_site_count(origin, self.sites.len())?;
        let defaults = SiteDefaults { shape: self.site_shape, area_um2: self.site_area_um2 };
        let mut sites = Vec::with_capacity(self.sites.len());
        let mut seen = Seen::default();
        for (index, entry) in self.sites.into_iter().enumerate() {
            let site = entry.into_site(origin, index, &defaults)?;
            seen.check(origin, index, &site)?;
            sites.push(site);
        }
        sites.sort_by_key(|s| s.channel);
        Ok(ProbeMap { name: self.name, vendor: self.vendor, description: self.description, sites })
    }
}

/// `site_shape` and `site_area_um2`: what a site without its own `shape` or `area_um2` gets.
struct SiteDefaults {
    shape: Option<SiteShape>,
    area_um2: Option<f64>,
}

impl SiteEntry {
    /// Checks one site's own values (index = its position in the file) and applies the defaults.
    fn into_site(self, origin: &str, index: usize, defaults: &SiteDefaults) -> Result<Site, ProbeMapError> {
        let field = |name: &str| format!("sites[{index}].{name}");
        if self.channel >= MAX_SITES {
            let allowed = format!("allowed: 0..={} (the amplifier channel within the port)", MAX_SITES - 1);
            return Err(invalid(origin, &field("channel"), self.channel, allowed));
        }
        if self.site < 1 {
            return Err(invalid(
                origin,
                &field("site"),
                self.site,
                "allowed: 1 or more (the number on the vendor's map)",
            ));
        }
        if self.shank as usize >= MAX_SITES {
            let allowed = format!("allowed: 0..={} (0-based; no probe has more shanks than sites)", MAX_SITES - 1);
            return Err(invalid(origin, &field("shank"), self.shank, allowed));
        }
        for (name, value) in [("x_um", self.x_um), ("y_um", self.y_um), ("z_um", self.z_um)] {
            check_finite(origin, &field(name), value)?;
        }
        let shape = self.shape.or(defaults.shape).ok_or_else(|| {
            let allowed = "allowed: circle, square, rectangle or polygon, here or as `site_shape` for all sites";
            invalid(origin, &field("shape"), "(missing)", allowed)
        })?;
        let area_um2 = match self.area_um2.or(defaults.area_um2) {
            Some(area) => area,
            None => {
                let allowed = "allowed: a number > 0 µm², here or as `site_area_um2` for all sites";
                return Err(invalid(origin, &field("area_um2"), "(missing)", allowed));
            }
        };
        if self.area_um2.is_some() {
            check_area(origin, &field("area_um2"), area_um2)?;
        }
        Ok(Site {
            channel: self.channel,
            site: self.site,
            shank: self.shank,
            x_um: self.x_um,
            y_um: self.y_um,
            z_um: self.z_um,
            shape,
            area_um2,
        })
    }
}

/// Channels and site numbers already used, with the index of the site that used them.
#[derive(Default)]
struct Seen {
    channels: HashMap<usize, usize>,
    sites: HashMap<i32, usize>,
}

impl Seen {
    /// Refuses a channel or site number that an earlier site already has: two sites on one
    /// channel would put one signal in two places.
    fn check(&mut self, origin: &str, index: usize, site: &Site) -> Result<(), ProbeMapError> {
        if let Some(first) = self.channels.insert(site.channel, index) {
            let allowed = format!("allowed: each channel once; sites[{first}] already has it");
            return Err(invalid(origin, &format!("sites[{index}].channel"), site.channel, allowed));
        }
        if let Some(first) = self.sites.insert(site.site, index) {
            let allowed = format!("allowed: each site number once; sites[{first}] already has it");
            return Err(invalid(origin, &format!("sites[{index}].site"), site.site, allowed));
        }
        Ok(())
    }
}

fn check_site_count(origin: &str, count: usize) -> Result<(), ProbeMapError> {
    if (1..=MAX_SITES).contains(&count) {
        return Ok(());
    }
    let allowed = format!("allowed: 1 to {MAX_SITES} [[sites]] tables, one per recorded channel");
    Err(invalid(origin, "sites", format!("{count} sites"), allowed))
}

fn check_finite(origin: &str, field: &str, value: f64) -> Result<(), ProbeMapError> {
    if value.is_finite() {
        return Ok(());
    }
    Err(invalid(origin, field, value, "allowed: a finite number of µm"))
}

fn check_area(origin: &str, field: &str, value: f64) -> Result<(), ProbeMapError> {
    if value.is_finite() && value > 0.0 {
        return Ok(());
    }
    Err(invalid(origin, field, value, "allowed: a finite number > 0 µm²"))
}

fn invalid(origin: &str, field: &str, value: impl std::fmt::Display, allowed: impl Into<String>) -> ProbeMapError {
    ProbeMapError::Invalid {
        origin: origin.to_string(),
        field: field.to_string(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

/// Turns a TOML or serde error into one line that says where: the line number and the field
/// there (`sites[3].shape`). The TOML message itself already says what was expected.
fn format_error(text: &str, origin: &str, error: &toml::de::Error) -> ProbeMapError {
    let location = match error.span() {
        Some(span) if !(span.is_empty() && span.start == 0) => describe_location(text, span.start),
        _ => String::new(),
    };
    ProbeMapError::Format { origin: origin.to_string(), location, message: error.message().to_string() }
}

/// `", line 12, `sites[3].channel`"` for a byte offset into a map file: the `[[sites]]` table the
/// offset falls in (counted from 0) and the key on its line, if the line has one.
fn describe_location(text: &str, offset: usize) -> String {
    if !text.is_char_boundary(offset) {
        return String::new();
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line_number = text[..offset].matches('\n').count() + 1;
    let tables = text[..line_end].lines().filter(|l| is_sites_header(l)).count();
    let key = key_of_line(&text[line_start..line_end]);
    let field = match (tables, key) {
        (0, Some(key)) => key.to_string(),
        (0, None) => return format!(", line {line_number}"),
        (n, Some(key)) => format!("sites[{}].{key}", n - 1),
        (n, None) => format!("sites[{}]", n - 1),
    };
    format!(", line {line_number}, `{field}`")
}

fn is_sites_header(line: &str) -> bool {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    compact.starts_with("[[sites]]")
}

/// The key a `key = value` line sets; `None` for table headers and lines without `=`.
fn key_of_line(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('#') {
        return None;
    }
    let (key, _) = trimmed.split_once('=')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then_some(key)
}

/// A shipped map by its built-in name (the file stem in `probes/`, any letter case).
pub fn builtin(name: &str) -> Option<ProbeMap> {
    let (stem, text) = BUILTINS.iter().find(|(stem, _)| stem.eq_ignore_ascii_case(name))?;
    // Every shipped map is parsed by the unit tests, so this cannot fail in a tested build.
    Some(ProbeMap::parse(text, stem).expect("shipped probe maps are valid"))
}

/// The built-in names, sorted.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(stem, _)| *stem).collect()
}

/// A built-in map by name, else the map file at that path. When it is neither, the error says so
/// and lists the built-in names.
pub fn resolve(name_or_path: &str) -> Result<ProbeMap, ProbeMapError> {
    if let Some(map) = builtin(name_or_path) {
        return Ok(map);
    }
    let path = Path::new(name_or_path);
    match std::fs::read_to_string(path) {
        Ok(text) => ProbeMap::parse(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ProbeMapError::NotFound {
            name: name_or_path.to_string(),
            builtins: builtin_names().join(", "),
            reason: format!("no file {}", path.display()),
        }),
        Err(source) => Err(ProbeMapError::Read { origin: path.display().to_string(), source }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    const ORIGIN: &str = "test.toml";

    /// A valid two-site map; tests change one line of it.
    const TWO_SITES: &str = r#"
name = "Test-2"
vendor = "Nobody"
description = "two sites"
site_shape = "circle"
site_area_um2 = 177.0

[[sites]]
channel = 0
site = 1
shank = 0
x_um = 0.0
y_um = 0.0

[[sites]]
channel = 1
site = 2
shank = 0
x_um = 0.0
y_um = 50.0
"#;

    fn parse_with(from: &str, to: &str) -> Result<ProbeMap, ProbeMapError> {
        assert!(TWO_SITES.contains(from), "test fixture has no {from:?}");
        ProbeMap::parse(&TWO_SITES.replacen(from, to, 1), ORIGIN)
    }

    /// The `y` step between consecutive sites of each column (same shank and x), all columns.
    fn column_steps(map: &ProbeMap) -> Vec<f64> {
        let mut columns: BTreeMap<(u32, i64), Vec<f64>> = BTreeMap::new();
        for s in &map.sites {
            columns.entry((s.shank, (s.x_um * 1000.0).round() as i64)).or_default().push(s.y_um);
        }
        let mut steps = Vec::new();
        for ys in columns.values_mut() {
            ys.sort_by(f64::total_cmp);
            steps.extend(ys.windows(2).map(|w| w[1] - w[0]));
        }
        steps
    }

    /// Site numbers of one shank and x, from the tip up.
    fn column_from_tip(map: &ProbeMap, shank: u32, x_um: f64) -> Vec<i32> {
        let mut column: Vec<&Site> =
            map.sites.iter().filter(|s| s.shank == shank && (s.x_um - x_um).abs() < 1e-9).collect();
        column.sort_by(|a, b| a.y_um.total_cmp(&b.y_um));
        column.iter().map(|s| s.site).collect()
    }

    #[test]
    fn every_builtin_parses_with_unique_channels_and_sites_in_channel_order() {
        assert_eq!(builtin_names().len(), BUILTINS.len());
        for name in builtin_names() {
            let map = builtin(name).unwrap_or_else(|| panic!("{name} is listed but not found"));
            let channels: HashSet<usize> = map.sites.iter().map(|s| s.channel).collect();
            let sites: HashSet<i32> = map.sites.iter().map(|s| s.site).collect();
            assert_eq!(channels.len(), map.channels(), "{name}: a channel is used twice");
            assert_eq!(sites.len(), map.channels(), "{name}: a site number is used twice");
            assert!(map.sites.windows(2).all(|w| w[0].channel < w[1].channel), "{name}: not in channel order");
            // The shipped maps do not know the adapter, and say so: channel = site - 1.
            assert!(map.sites.iter().all(|s| s.channel as i32 == s.site - 1), "{name}");
            assert!(map.description.contains("channel = site - 1"), "{name}: description hides the channel order");
            assert!(map.sites.iter().all(|s| s.shape == SiteShape::Circle && s.area_um2 == 177.0), "{name}");
            assert_eq!(map.vendor, "NeuroNexus");
        }
    }

    #[test]
    fn every_file_in_probes_is_built_in_and_named_after_its_stem() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes");
        let mut stems: Vec<String> = std::fs::read_dir(&dir)
            .expect("probes/ exists")
            .map(|e| e.expect("readable entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| p.file_stem().expect("a stem").to_string_lossy().into_owned())
            .collect();
        stems.sort();
        assert_eq!(stems, builtin_names());
        for stem in &stems {
            let on_disk = ProbeMap::load(&dir.join(format!("{stem}.toml"))).expect("valid file");
            assert_eq!(Some(on_disk), builtin(stem), "{stem}: the embedded copy differs from the file");
        }
    }

    #[test]
    fn the_shipped_geometries_match_their_sources() {
        // (built-in, vendor model, sites, shanks, columns in all, pitch within a column, bounds)
        let expected = [
            ("neuronexus-a1x16-5mm-50-177", "A1x16-5mm-50-177", 16, 1, 1, 50.0, (0.0, 0.0, 0.0, 750.0)),
            ("neuronexus-a1x32-6mm-50-177", "A1x32-6mm-50-177", 32, 1, 1, 50.0, (0.0, 0.0, 0.0, 1550.0)),
            ("neuronexus-a1x32-poly2-5mm-50s-177", "A1x32-Poly2-5mm-50s-177", 32, 1, 2, 50.0, (0.0, 43.3, 0.0, 775.0)),
            ("neuronexus-a4x8-5mm-200-400-177", "A4x8-5mm-200-400-177", 32, 4, 4, 200.0, (0.0, 1200.0, 0.0, 1400.0)),
        ];
        for (builtin_name, model, sites, shanks, columns, pitch, bounds) in expected {
            let map = builtin(builtin_name).expect("built in");
            assert_eq!(map.name, model);
            assert_eq!(map.channels(), sites, "{model}");
            assert_eq!(map.shanks(), shanks, "{model}");
            assert_eq!(map.bounds(), bounds, "{model}");
            let steps = column_steps(&map);
            assert_eq!(steps.len(), sites - columns, "{model}: columns");
            assert!(steps.iter().all(|&s| s == pitch), "{model}: steps {steps:?}");
        }
    }

    #[test]
    fn the_shipped_site_numbers_match_the_vendor_maps() {
        let a1x16 = builtin("neuronexus-a1x16-5mm-50-177").unwrap();
        assert_eq!(column_from_tip(&a1x16, 0, 0.0), [1, 16, 2, 15, 3, 14, 4, 13, 5, 12, 6, 11, 7, 10, 8, 9]);

        let a1x32 = builtin("neuronexus-a1x32-6mm-50-177").unwrap();
        let mut top_down = column_from_tip(&a1x32, 0, 0.0);
        top_down.reverse();
        let vendor_top_down = [
            17, 16, 18, 15, 19, 14, 20, 13, 21, 12, 22, 11, 23, 10, 24, 9, 25, 8, 26, 7, 27, 6, 28, 5, 29, 4, 30, 3,
            31, 2, 32, 1,
        ];
        assert_eq!(top_down, vendor_top_down);

        let a4x8 = builtin("neuronexus-a4x8-5mm-200-400-177").unwrap();
        for shank in 0..4u32 {
            let offset = 8 * shank as i32;
            let expected: Vec<i32> = [1, 8, 2, 7, 3, 6, 4, 5].iter().map(|s| s + offset).collect();
            assert_eq!(column_from_tip(&a4x8, shank, 400.0 * shank as f64), expected, "shank {shank}");
        }

        let poly2 = builtin("neuronexus-a1x32-poly2-5mm-50s-177").unwrap();
        assert_eq!(column_from_tip(&poly2, 0, 0.0), [16, 15, 14, 13, 12, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(column_from_tip(&poly2, 0, 43.3), [17, 18, 19, 20, 21, 22, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23]);
        let lowest = |x: f64| poly2.sites.iter().filter(|s| s.x_um == x).map(|s| s.y_um).fold(f64::MAX, f64::min);
        assert_eq!(lowest(43.3) - lowest(0.0), 25.0, "the second column is staggered by half a pitch");
    }

    #[test]
    fn the_simulated_rig_is_one_linear_shank_at_25_um() {
        let map = ProbeMap::simulated_linear(64);
        assert_eq!(map.channels(), 64);
        assert_eq!(map.shanks(), 1);
        assert_eq!(map.bounds(), (0.0, 0.0, 0.0, 63.0 * 25.0));
        for (i, s) in map.sites.iter().enumerate() {
            assert_eq!((s.channel, s.site, s.shank), (i, i as i32 + 1, 0));
            assert_eq!((s.x_um, s.y_um, s.z_um), (0.0, 25.0 * i as f64, 0.0));
            assert_eq!((s.shape, s.area_um2), (SiteShape::Circle, 177.0));
        }
        assert_eq!(map.site_for_channel(0).map(|s| s.y_um), Some(0.0));
        assert_eq!(map.site_for_channel(63).map(|s| s.site), Some(64));
        assert!(map.site_for_channel(64).is_none());
        assert_eq!(ProbeMap::simulated_linear(0).bounds(), (0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn site_for_channel_finds_the_site_wherever_it_is_written() {
        // The channels swapped: the file lists channel 1 first.
        let swapped = TWO_SITES.replacen("channel = 0", "channel = X", 1).replacen("channel = 1", "channel = 0", 1);
        let map = ProbeMap::parse(&swapped.replacen("channel = X", "channel = 1", 1), ORIGIN).unwrap();
        assert_eq!(map.site_for_channel(1).map(|s| s.site), Some(1));
        assert_eq!(map.site_for_channel(0).map(|s| s.site), Some(2));
        assert_eq!(map.sites[0].channel, 0, "sites are kept in channel order");
    }

    #[test]
    fn defaults_apply_unless_a_site_has_its_own_shape_or_area() {
        let map = parse_with("y_um = 50.0", "y_um = 50\nshape = \"square\"\narea_um2 = 400").unwrap();
        let (first, second) = (&map.sites[0], &map.sites[1]);
        assert_eq!((first.shape, first.area_um2), (SiteShape::Circle, 177.0));
        assert_eq!((second.shape, second.area_um2, second.y_um), (SiteShape::Square, 400.0, 50.0));
        assert_eq!(second.shape.name(), "square");
        let no_defaults = TWO_SITES.replacen("site_shape = \"circle\"\n", "", 1);
        let err = ProbeMap::parse(&no_defaults, ORIGIN).unwrap_err().to_string();
        assert!(err.contains("`sites[0].shape`") && err.contains("site_shape"), "{err}");
    }

    #[test]
    fn a_duplicate_channel_names_both_sites_and_the_rule() {
        let err = parse_with("channel = 1", "channel = 0").unwrap_err();
        assert!(matches!(&err, ProbeMapError::Invalid { field, .. } if field == "sites[1].channel"), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("probe map test.toml:"), "{text}");
        assert!(text.contains("each channel once") && text.contains("sites[0]"), "{text}");
    }

    #[test]
    fn a_duplicate_site_number_is_refused() {
        let err = parse_with("site = 2", "site = 1").unwrap_err();
        assert!(matches!(&err, ProbeMapError::Invalid { field, .. } if field == "sites[1].site"), "{err:?}");
        assert!(err.to_string().contains("each site number once"), "{err}");
    }

    #[test]
    fn a_nan_coordinate_names_the_field_and_asks_for_a_finite_number() {
        let err = parse_with("y_um = 50.0", "y_um = nan").unwrap_err();
        assert!(matches!(&err, ProbeMapError::Invalid { field, .. } if field == "sites[1].y_um"), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("test.toml") && text.contains("NaN") && text.contains("finite"), "{text}");
        let err = parse_with("x_um = 0.0", "x_um = inf").unwrap_err();
        assert!(matches!(&err, ProbeMapError::Invalid { field, .. } if field == "sites[0].x_um"), "{err:?}");
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_place_and_the_known_fields() {
        let err = parse_with("y_um = 50.0", "y_um = 50.0\ncolour = \"red\"").unwrap_err();
        let ProbeMapError::Format { location, message, .. } = &err else { panic!("{err:?}") };
        assert!(location.contains("`sites[1].colour`"), "{location}");
        assert!(message.contains("unknown field `colour`") && message.contains("`area_um2`"), "{message}");
        assert!(err.to_string().starts_with("probe map test.toml, line "), "{err}");

        let err = parse_with("vendor", "colour = 1\nvendor").unwrap_err();
        let ProbeMapError::Format { location, message, .. } = &err else { panic!("{err:?}") };
        assert!(location.ends_with("`colour`") && message.contains("`site_area_um2`"), "{err}");
    }

    #[test]
    fn an_unknown_shape_is_refused_with_the_known_shapes() {
        let err = parse_with("y_um = 50.0", "y_um = 50.0\nshape = \"hexagon\"").unwrap_err();
        let ProbeMapError::Format { location, message, .. } = &err else { panic!("{err:?}") };
        assert!(location.contains("`sites[1].shape`"), "{location}");
        for known in ["hexagon", "circle", "square", "rectangle", "polygon"] {
            assert!(message.contains(known), "{message}");
        }
    }

    #[test]
    fn a_map_without_sites_is_refused() {
        let header_only = &TWO_SITES[..TWO_SITES.find("[[sites]]").unwrap()];
        let err = ProbeMap::parse(header_only, ORIGIN).unwrap_err();
        assert!(matches!(&err, ProbeMapError::Invalid { field, .. } if field == "sites"), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("0 sites") && text.contains("1 to 1024"), "{text}");
    }

    #[test]
    fn out_of_range_values_name_the_field_and_the_range() {
        let cases = [
            ("channel = 1", "channel = 1024", "sites[1].channel", "0..=1023"),
            ("site = 2", "site = 0", "sites[1].site", "1 or more"),
            (
                "shank = 0\nx_um = 0.0\ny_um = 50.0",
                "shank = 4000\nx_um = 0.0\ny_um = 50.0",
                "sites[1].shank",
                "0..=1023",
            ),
            ("site_area_um2 = 177.0", "site_area_um2 = 0.0", "site_area_um2", "> 0"),
            ("y_um = 50.0", "y_um = 50.0\narea_um2 = -3", "sites[1].area_um2", "> 0"),
            ("name = \"Test-2\"", "name = \" \"", "name", "vendor prints"),
        ];
        for (from, to, expected_field, allowed_part) in cases {
            let err = parse_with(from, to).unwrap_err();
            let ProbeMapError::Invalid { origin, field, allowed, .. } = &err else { panic!("{to}: {err:?}") };
            assert_eq!((origin.as_str(), field.as_str()), (ORIGIN, expected_field), "{to}");
            assert!(allowed.contains(allowed_part), "{to}: {allowed}");
        }
    }

    #[test]
    fn wrong_types_and_missing_fields_say_where() {
        let err = parse_with("channel = 1", "channel = -1").unwrap_err();
        let ProbeMapError::Format { location, message, .. } = &err else { panic!("{err:?}") };
        assert!(location.contains("`sites[1].channel`") && message.contains("usize"), "{err}");

        let err = parse_with("site = 2\n", "").unwrap_err();
        let ProbeMapError::Format { location, message, .. } = &err else { panic!("{err:?}") };
        assert!(location.contains("`sites[1]`") && message.contains("missing field `site`"), "{err}");

        let err = parse_with("name = \"Test-2\"\n", "").unwrap_err();
        assert!(err.to_string().contains("missing field `name`"), "{err}");

        let err = parse_with("x_um = 0.0", "x_um = ").unwrap_err();
        let ProbeMapError::Format { location, .. } = &err else { panic!("{err:?}") };
        assert!(location.contains("`sites[0].x_um`"), "{err}");
    }

    #[test]
    fn resolve_finds_a_builtin_by_name_in_any_case() {
        let map = resolve("neuronexus-a1x32-6mm-50-177").expect("built in");
        assert_eq!(map.name, "A1x32-6mm-50-177");
        assert_eq!(resolve("NeuroNexus-A1x32-6mm-50-177").expect("built in"), map);
    }

    #[test]
    fn resolve_reads_a_map_file_by_path_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my-probe.toml");
        std::fs::write(&path, TWO_SITES).unwrap();
        let map = resolve(path.to_str().unwrap()).expect("a valid file");
        assert_eq!((map.name.as_str(), map.channels()), ("Test-2", 2));
        assert_eq!(ProbeMap::load(&path).unwrap(), map);

        std::fs::write(&path, TWO_SITES.replacen("channel = 1", "channel = 0", 1)).unwrap();
        let err = resolve(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.starts_with(&format!("probe map {}:", path.display())), "{err}");
    }

    #[test]
    fn resolve_of_neither_a_builtin_nor_a_file_lists_the_builtins() {
        let err = resolve("/nonexistent/A1x99.toml").unwrap_err();
        assert!(matches!(err, ProbeMapError::NotFound { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent/A1x99.toml") && text.contains("built-in") && text.contains("file"),
            "{text}"
        );
        for name in builtin_names() {
            assert!(text.contains(name), "{text} does not list {name}");
        }
        let err = ProbeMap::load(Path::new("/nonexistent/A1x99.toml")).unwrap_err();
        assert!(matches!(err, ProbeMapError::Read { ref origin, .. } if origin == "/nonexistent/A1x99.toml"));
    }

    #[test]
    fn shape_names_are_the_file_names() {
        let shapes = [SiteShape::Circle, SiteShape::Square, SiteShape::Rectangle, SiteShape::Polygon];
        for shape in shapes {
            let text = TWO_SITES.replacen("\"circle\"", &format!("\"{}\"", shape.name()), 1);
            assert_eq!(ProbeMap::parse(&text, ORIGIN).unwrap().sites[0].shape, shape);
        }
    }
}
