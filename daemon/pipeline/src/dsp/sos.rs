//! Second-order sections and the double-precision reference filter.
//!
//! Cascaded biquads are how IIR filters run in practice: a high-order transfer function as one
//! polynomial loses its poles to rounding, the same filter as biquads does not. [`sosfilt`] is
//! the offline reference (scipy's `sosfilt`, in f64), against which the real-time f32 path is
//! tested.

use super::design::DesignError;

/// Second-order sections, each `[b0, b1, b2, a0, a1, a2]` with `a0 = 1`, as scipy's `sos`
/// arrays. Always at least one section, every coefficient finite, every section stable.
#[derive(Debug, Clone, PartialEq)]
pub struct Sos {
    sections: Vec<[f64; 6]>,
}

impl Sos {
    /// Sections made elsewhere (scipy, a recording's metadata). Each must be finite, have
    /// `a0 = 1` and its poles inside the unit circle.
    pub fn new(sections: Vec<[f64; 6]>) -> Result<Self, DesignError> {
        if let Some(section) = sections.iter().position(|s| s[3] != 1.0 || s.iter().any(|c| !c.is_finite())) {
            return Err(DesignError::Section { section });
        }
        Sos::checked(sections)
    }

    /// Sections from [`design`](super::design()): checks they are non-empty and stable.
    pub(crate) fn checked(sections: Vec<[f64; 6]>) -> Result<Self, DesignError> {
        if sections.is_empty() {
            return Err(DesignError::NoSections);
        }
        // Stability triangle of 1 + a1/z + a2/z²; NaN fails it too.
        let stable = |s: &[f64; 6]| s[5].abs() < 1.0 && s[4].abs() < 1.0 + s[5] && s[..3].iter().all(|b| b.is_finite());
        match sections.iter().position(|s| !stable(s)) {
            Some(section) => Err(DesignError::Unstable { section }),
            None => Ok(Sos { sections }),
        }
    }

    /// The sections, first applied first.
    pub fn sections(&self) -> &[[f64; 6]] {
        &self.sections
    }

    /// Gain at 0 Hz: the product of each section's `sum(b) / sum(a)`.
    pub fn dc_gain(&self) -> f64 {
        self.sections.iter().map(section_dc_gain).product()
    }
}

fn section_dc_gain(s: &[f64; 6]) -> f64 {
    (s[0] + s[1] + s[2]) / (s[3] + s[4] + s[5])
}

/// Filters `x` in place from zero state, as scipy's `sosfilt(sos, x)`.
pub fn sosfilt(sos: &Sos, x: &mut [f64]) {
    let mut state = vec![[0.0; 2]; sos.sections.len()];
    sosfilt_with_state(sos, x, &mut state);
}

/// Filters `x` in place starting from `state` (one `[z1, z2]` per section, transposed direct
/// form II, as scipy's `zi`) and leaves the final state there, as
/// `y, zf = sosfilt(sos, x, zi=state)`. Panics if `state` does not have one entry per section.
pub fn sosfilt_with_state(sos: &Sos, x: &mut [f64], state: &mut [[f64; 2]]) {
    assert_eq!(state.len(), sos.sections.len(), "one state per section");
    for v in x.iter_mut() {
        let mut u = *v;
        for (s, z) in sos.sections.iter().zip(state.iter_mut()) {
            let y = s[0] * u + z[0];
            z[0] = s[1] * u - s[4] * y + z[1];
            z[1] = s[2] * u - s[5] * y;
            u = y;
        }
        *v = u;
    }
}

/// The state each section holds after a unit step has run forever, as scipy's
/// `sosfilt_zi(sos)`. Scaled by a sample `x0`, it starts a filter as if the signal had always
/// been `x0`: no transient from a DC offset.
pub fn sosfilt_zi(sos: &Sos) -> Vec<[f64; 2]> {
    let mut scale = 1.0;
    sos.sections
        .iter()
        .map(|s| {
            // Steady state for a constant input u = scale, output g·u:
            // y = b0·u + z1 and z2 = b2·u − a2·y, the TDF-II equations at rest.
            let g = section_dc_gain(s);
            let zi = [scale * (g - s[0]), scale * (s[2] - s[5] * g)];
            scale *= g;
            zi
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn highpass() -> Sos {
        // butter(2, 300, 'highpass', output='sos', fs=30000)
        Sos::new(vec![[
            0.9565432255568767,
            -1.9130864511137533,
            0.9565432255568767,
            1.0,
            -1.911197067426073,
            0.9149758348014336,
        ]])
        .unwrap()
    }

    #[test]
    fn a_step_from_the_steady_state_stays_there() {
        let lowpass = Sos::new(vec![[0.2, 0.4, 0.2, 1.0, -0.5, 0.3], [1.0, 1.0, 0.0, 1.0, -0.2, 0.0]]).unwrap();
        for sos in [highpass(), lowpass] {
            let mut state: Vec<[f64; 2]> = sosfilt_zi(&sos).iter().map(|z| [z[0] * 3.0, z[1] * 3.0]).collect();
            let mut x = vec![3.0; 50];
            sosfilt_with_state(&sos, &mut x, &mut state);
            let expected = 3.0 * sos.dc_gain();
            assert!(x.iter().all(|y| (y - expected).abs() < 1e-12), "{x:?}");
        }
    }

    #[test]
    fn sosfilt_is_the_impulse_response_of_the_difference_equation() {
        let sos = highpass();
        let mut x = vec![0.0; 4];
        x[0] = 1.0;
        sosfilt(&sos, &mut x);
        let [b0, b1, b2, _, a1, a2] = sos.sections()[0];
        let y0 = b0;
        let y1 = b1 - a1 * y0;
        let y2 = b2 - a1 * y1 - a2 * y0;
        let y3 = -a1 * y2 - a2 * y1;
        for (got, want) in x.iter().zip([y0, y1, y2, y3]) {
            assert!((got - want).abs() < 1e-15);
        }
    }

    #[test]
    fn hand_made_sections_must_be_normalised_finite_and_stable() {
        assert_eq!(Sos::new(vec![]), Err(DesignError::NoSections));
        let ok = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        assert_eq!(Sos::new(vec![ok, [1.0, 0.0, 0.0, 2.0, 0.0, 0.0]]), Err(DesignError::Section { section: 1 }));
        assert_eq!(Sos::new(vec![[f64::NAN, 0.0, 0.0, 1.0, 0.0, 0.0]]), Err(DesignError::Section { section: 0 }));
        assert_eq!(Sos::new(vec![ok, ok, [1.0, 0.0, 0.0, 1.0, -2.0, 1.0]]), Err(DesignError::Unstable { section: 2 }));
        assert!(Sos::new(vec![ok]).is_ok());
    }
}
