//! Scores to answers: softmax, top-k, labels.

use crate::VisionError;

/// Softmax, computed stably (the maximum is subtracted first), in f64.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        // All -inf, or a NaN/inf present: no meaningful distribution.
        return vec![f32::NAN; logits.len()];
    }
    let exps: Vec<f64> = logits.iter().map(|&x| f64::from(x - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// One class with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The class index (output position).
    pub index: usize,
    /// Its score.
    pub score: f32,
}

/// The `k` highest scores, highest first; ties keep the lower index first.
/// NaN scores rank last.
pub fn top_k(scores: &[f32], k: usize) -> Vec<Scored> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let key = |i: usize| {
        if scores[i].is_nan() {
            f32::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    idx.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    idx.into_iter()
        .take(k)
        .map(|index| Scored {
            index,
            score: scores[index],
        })
        .collect()
}

/// Class names in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels(Vec<String>);

impl Labels {
    /// Parses a labels file: one name a line, in output order; a trailing
    /// newline is allowed, blank lines in between are not.
    pub fn parse(text: &str) -> Result<Labels, VisionError> {
        let lines: Vec<&str> = text.strip_suffix('\n').unwrap_or(text).split('\n').collect();
        let mut names = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let name = line.strip_suffix('\r').unwrap_or(line).trim();
            if name.is_empty() {
                return Err(VisionError::Labels(format!("line {} is empty", i + 1)));
            }
            names.push(name.to_owned());
        }
        Ok(Labels(names))
    }

    /// Labels from names.
    pub fn new(names: Vec<String>) -> Labels {
        Labels(names)
    }

    /// The name of class `index`.
    pub fn get(&self, index: usize) -> Option<&str> {
        self.0.get(index).map(String::as_str)
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the count against a model's number of classes.
    pub fn check_count(&self, classes: usize) -> Result<(), VisionError> {
        if self.0.len() != classes {
            return Err(VisionError::Labels(format!(
                "the labels file has {} names but the model has {classes} classes",
                self.0.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_and_normalised() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0);
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((p[2] - 0.665_240_9).abs() < 1e-6);
        assert!(softmax(&[f32::NAN, 1.0]).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn top_k_orders_by_score_then_index() {
        let t = top_k(&[0.1, 0.5, f32::NAN, 0.5, 0.2], 3);
        assert_eq!(t.iter().map(|s| s.index).collect::<Vec<_>>(), [1, 3, 4]);
        assert_eq!(top_k(&[1.0], 5).len(), 1);
    }

    #[test]
    fn labels_parse_and_check() {
        let l = Labels::parse("cat\r\ndog\n").unwrap();
        assert_eq!((l.len(), l.get(1)), (2, Some("dog")));
        assert!(l.check_count(2).is_ok());
        assert_eq!(
            l.check_count(3).unwrap_err().to_string(),
            "invalid labels: the labels file has 2 names but the model has 3 classes"
        );
        assert_eq!(
            Labels::parse("a\n\nb").unwrap_err().to_string(),
            "invalid labels: line 2 is empty"
        );
    }
}
