//! Whole classifiers of two more families, built here with random weights
//! (MobileNetV2's inverted residuals, ResNet's basic blocks with batch
//! norm and a downsampling branch), on the GPU vs tract.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use edgeserve_onnx::pb::{NodeProto, TensorProto};

/// Names tensors and collects nodes and weights as a graph is built.
struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    n: u64,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            nodes: Vec::new(),
            inits: Vec::new(),
            n: 0,
        }
    }

    fn fresh(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{what}{}", self.n)
    }

    /// A convolution with He-scaled random weights (so activations stay
    /// O(1) through the depth), and bias.
    fn conv(&mut self, x: &str, cin: usize, cout: usize, k: usize, stride: usize, group: usize) -> String {
        let w = self.fresh("w");
        let b = self.fresh("b");
        let fan_in = (cin / group * k * k) as f32;
        let scale = (2.0 / fan_in).sqrt() / 2.0;
        let data = values(cout * cin / group * k * k, self.n)
            .into_iter()
            .map(|v| v * scale)
            .collect();
        self.inits.push(floats(&w, &[cout, cin / group, k, k], data));
        self.inits.push(floats(
            &b,
            &[cout],
            values(cout, self.n + 7).into_iter().map(|v| v * 0.05).collect(),
        ));
        let y = self.fresh("conv");
        let p = (k / 2) as i64;
        self.nodes.push(node(
            "Conv",
            &[x, &w, &b],
            &y,
            vec![
                a_ints("pads", &[p, p, p, p]),
                a_ints("strides", &[stride as i64; 2]),
                a_i("group", group as i64),
                a_ints("kernel_shape", &[k as i64; 2]),
            ],
        ));
        y
    }

    fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<edgeserve_onnx::pb::AttributeProto>) -> String {
        let y = self.fresh(&op.to_lowercase());
        self.nodes.push(node(op, inputs, &y, attrs));
        y
    }

    fn relu6(&mut self, x: &str) -> String {
        if !self.inits.iter().any(|t| t.name == "zero") {
            self.inits.push(floats("zero", &[], vec![0.0]));
            self.inits.push(floats("six", &[], vec![6.0]));
        }
        self.op("Clip", &[x, "zero", "six"], vec![])
    }

    fn batch_norm(&mut self, x: &str, c: usize) -> String {
        let names: Vec<String> = ["s", "bb", "m", "v"].iter().map(|n| self.fresh(n)).collect();
        let s = values(c, self.n).into_iter().map(|v| 1.0 + v * 0.1).collect();
        let bb = values(c, self.n + 1).into_iter().map(|v| v * 0.1).collect();
        let m = values(c, self.n + 2).into_iter().map(|v| v * 0.1).collect();
        let v = values(c, self.n + 3)
            .into_iter()
            .map(|v| 1.0 + v.abs() * 0.2)
            .collect();
        for (name, data) in names.iter().zip([s, bb, m, v]) {
            self.inits.push(floats(name, &[c], data));
        }
        let inputs: Vec<&str> = std::iter::once(x)
            .chain(names.iter().map(String::as_str))
            .collect();
        self.op("BatchNormalization", &inputs, vec![])
    }

    /// Global pooling, flatten and a classifier head named "y".
    fn head(&mut self, x: &str, c: usize, classes: usize) {
        let g = self.op("GlobalAveragePool", &[x], vec![]);
        let f = self.op("Flatten", &[&g], vec![a_i("axis", 1)]);
        self.inits.push(weight("fc_w", &[classes, c], 90));
        self.inits.push(weight("fc_b", &[classes], 91));
        self.nodes
            .push(node("Gemm", &[&f, "fc_w", "fc_b"], "y", vec![a_i("transB", 1)]));
    }
}

gpu_test! {
    async fn mobilenet_v2_shaped_model_matches_tract() {
        let mut b = Builder::new();
        let stem = b.conv("x", 3, 16, 3, 2, 1);
        let mut x = b.relu6(&stem);
        let mut c = 16;
        // (expansion, out channels, stride): residual where shapes allow.
        for (t, cout, stride) in [(1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1)] {
            let hidden = c * t;
            let e = b.conv(&x, c, hidden, 1, 1, 1);
            let e = b.relu6(&e);
            let d = b.conv(&e, hidden, hidden, 3, stride, hidden);
            let d = b.relu6(&d);
            let p = b.conv(&d, hidden, cout, 1, 1, 1);
            x = if stride == 1 && c == cout { b.op("Add", &[&x, &p], vec![]) } else { p };
            c = cout;
        }
        let last = b.conv(&x, c, 128, 1, 1, 1);
        let last = b.relu6(&last);
        b.head(&last, 128, 10);
        let gpu = Case::new(b.nodes, vec![("x", vec![2, 3, 64, 64])])
            .inits(b.inits)
            .tolerance(1e-3)
            .check().await;
        let (_, fused) = gpu.program_stats();
        assert_eq!(fused, 1 + 2 * 5 + 1, "every ReLU6 rides on its convolution");
    }
}

gpu_test! {
    async fn resnet_shaped_model_matches_tract() {
        let mut b = Builder::new();
        let stem = b.conv("x", 3, 16, 7, 2, 1);
        let stem = b.batch_norm(&stem, 16);
        let stem = b.op("Relu", &[&stem], vec![]);
        let mut x = b.op(
            "MaxPool",
            &[&stem],
            vec![a_ints("kernel_shape", &[3, 3]), a_ints("strides", &[2, 2]), a_ints("pads", &[1, 1, 1, 1])],
        );
        let mut c = 16;
        for (cout, stride) in [(16, 1), (32, 2), (32, 1), (64, 2)] {
            let a = b.conv(&x, c, cout, 3, stride, 1);
            let a = b.batch_norm(&a, cout);
            let a = b.op("Relu", &[&a], vec![]);
            let a = b.conv(&a, cout, cout, 3, 1, 1);
            let a = b.batch_norm(&a, cout);
            let shortcut = if stride != 1 || c != cout {
                let s = b.conv(&x, c, cout, 1, stride, 1);
                b.batch_norm(&s, cout)
            } else {
                x.clone()
            };
            let sum = b.op("Add", &[&a, &shortcut], vec![]);
            x = b.op("Relu", &[&sum], vec![]);
            c = cout;
        }
        b.head(&x, c, 10);
        let logits_case = Case::new(b.nodes.clone(), vec![("x", vec![1, 3, 96, 96])])
            .inits(b.inits.clone())
            .tolerance(1e-3);
        logits_case.check().await;
        // The same network ending in Softmax, as many exported classifiers do.
        let mut nodes = b.nodes;
        let gemm = nodes.last_mut().unwrap();
        gemm.output = vec!["logits".into()];
        nodes.push(node("Softmax", &["logits"], "y", vec![a_i("axis", 1)]));
        Case::new(nodes, vec![("x", vec![1, 3, 96, 96])])
            .inits(b.inits)
            .tolerance(1e-4)
            .check().await;
    }
}
