//! Argmax with the lowest index winning ties (SPEC §10).

/// Index of the largest value; among equal maxima the **lowest index** wins (a
/// strict `>` scan from index 0). `None` for an empty slice (SPEC §10).
pub fn argmax_i32(x: &[i32]) -> Option<usize> {
    let mut best: Option<(usize, i32)> = None;
    for (i, &v) in x.iter().enumerate() {
        match best {
            Some((_, b)) if v <= b => {}
            _ => best = Some((i, v)),
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_and_extremes() {
        assert_eq!(argmax_i32(&[]), None);
        assert_eq!(argmax_i32(&[i32::MIN]), Some(0));
        assert_eq!(argmax_i32(&[i32::MIN; 9]), Some(0));
        assert_eq!(argmax_i32(&[1, 5, 5, 2]), Some(1));
        assert_eq!(argmax_i32(&[1, 2, 3, i32::MAX, i32::MAX]), Some(3));
        assert_eq!(argmax_i32(&[-3, -1, -1]), Some(1));
    }

    #[test]
    fn random_against_oracle() {
        let mut seed = 1u64;
        for case in 0..5000 {
            let n = 1 + case % 50;
            let mut v = std::vec::Vec::new();
            for _ in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v.push(((seed >> 40) % 7) as i32 - 3); // many ties
            }
            let mx = *v.iter().max().unwrap();
            let want = v.iter().position(|&x| x == mx);
            assert_eq!(argmax_i32(&v), want);
        }
    }
}
