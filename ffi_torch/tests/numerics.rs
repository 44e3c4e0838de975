//! Every tensor op, activation and layer against PyTorch itself (the same
//! 2.13.0 build, from Python): the same inputs give the same outputs within
//! float32 tolerance, gradients of a composite expression included.
#![cfg(feature = "pytorch")]

mod common;
use common::*;
use ffi_sdk::testing::{int, ok, text, NIL};
use ffi_sdk::Value;
use ffi_torch::nn::*;
use ffi_torch::tensor::*;
use serde_json::{json, Map, Value as J};

const ORACLE: &str = r#"
import json, sys, torch
import torch.nn.functional as F
torch.set_num_threads(1)
d = json.load(sys.stdin)
T = lambda k: torch.tensor(d[k], dtype=torch.float32)
A, B, C, v, A3 = T('A'), T('B'), T('C'), T('v'), T('A3')
I = torch.tensor(d['I'], dtype=torch.int64)
r = {}
r['add'] = A + B; r['add_bcast'] = A + v; r['add_scalar'] = A + 2.5; r['add_int'] = I + 3
r['sub'] = A - B; r['sub_scalar'] = A - 1.25; r['mul'] = A * B; r['mul_scalar'] = A * -3.0
r['div'] = A / B; r['div_int'] = I / 2; r['div_scalar'] = A / 4.0
r['matmul'] = A @ C; r['bmm'] = A3 @ C; r['matvec'] = A @ v
r['transpose'] = A.transpose(0, 1); r['transpose3'] = A3.transpose(0, 2)
r['reshape'] = A.reshape(2, 6); r['reshape_m1'] = A.reshape(-1, 3)
r['sum'] = A.sum(); r['sum1'] = A.sum(1); r['sum_keep'] = A.sum(dim=[0], keepdim=True)
r['sum_int'] = I.sum(); r['mean'] = A.mean(); r['mean0'] = A.mean(0); r['mean_int'] = I.mean(dtype=torch.float64)
r['relu'] = torch.relu(A); r['sigmoid'] = torch.sigmoid(A); r['softmax'] = F.softmax(A, -1); r['softmax0'] = F.softmax(A, 0)
r['dropout_eval'] = F.dropout(A, 0.5, training=False)
torch.manual_seed(7); r['randn'] = torch.randn(3, 3)
torch.manual_seed(11); r['randn64'] = torch.randn(2, 2, dtype=torch.float64)
X = T('X').requires_grad_(); W = T('W').requires_grad_()
y = torch.relu(X @ W + 1.0)
z = torch.softmax(y, -1) * y
loss = z.sum() / 3.0 - (X * X).mean()
loss.backward()
r['loss'] = loss; r['gX'] = X.grad; r['gW'] = W.grad
r['linear'] = F.linear(A, T('LW'), T('LB'))
r['conv'] = F.conv2d(T('CX'), T('CW'), T('CB'), stride=1, padding=1)
r['conv_s2'] = F.conv2d(T('CX'), T('CW'), T('CB'), stride=2, padding=0)
rm, rv = torch.zeros(4), torch.ones(4)
r['bn_train'] = F.batch_norm(A, rm, rv, torch.ones(4), torch.zeros(4), training=True, momentum=0.1, eps=1e-5)
r['bn_rm'] = rm; r['bn_rv'] = rv
r['bn_eval'] = F.batch_norm(B, rm, rv, torch.ones(4), torch.zeros(4), training=False, eps=1e-5)
r['ln'] = F.layer_norm(A3, (4,), torch.ones(4), torch.zeros(4), 1e-5)
r['ln2'] = F.layer_norm(A3, (3, 4), torch.ones(3, 4), torch.zeros(3, 4), 1e-5)
print(json.dumps({k: val.tolist() for k, val in r.items()}))
"#;

fn f(x: f64) -> u64 {
    Value::float(x).raw()
}

#[test]
fn ops_match_pytorch() {
    let mut inp = Map::new();
    inp.insert("A".into(), data(1, &[3, 4]));
    inp.insert("B".into(), data(2, &[3, 4]));
    inp.insert("C".into(), data(3, &[4, 5]));
    inp.insert("v".into(), data(4, &[4]));
    inp.insert("A3".into(), data(5, &[2, 3, 4]));
    inp.insert("X".into(), data(6, &[3, 4]));
    inp.insert("W".into(), data(7, &[4, 2]));
    inp.insert("CX".into(), data(8, &[2, 3, 6, 6]));
    inp.insert("I".into(), json!([[1, -2, 3], [4, 5, -7]]));
    let (a, b, c, v, a3) = (t(&inp["A"]), t(&inp["B"]), t(&inp["C"]), t(&inp["v"]), t(&inp["A3"]));
    let i = ok(rt_tensor_from_data(val(&inp["I"]).raw(), NIL)).raw();
    assert_eq!(ok(rt_tensor_dtype(i)).as_text(), Some("int64"));
    let mut got: Map<String, J> = Map::new();
    let mut put = |k: &str, r: u64| {
        got.insert(k.into(), values(ok(Value::from_raw(r).raw()).raw()));
    };
    put("add", rt_tensor_add(a, b));
    put("add_bcast", rt_tensor_add(a, v));
    put("add_scalar", rt_tensor_add(a, f(2.5)));
    put("add_int", rt_tensor_add(i, int(3)));
    put("sub", rt_tensor_sub(a, b));
    put("sub_scalar", rt_tensor_sub(a, f(1.25)));
    put("mul", rt_tensor_mul(a, b));
    put("mul_scalar", rt_tensor_mul(a, f(-3.0)));
    put("div", rt_tensor_div(a, b));
    put("div_int", rt_tensor_div(i, int(2)));
    put("div_scalar", rt_tensor_div(a, f(4.0)));
    put("matmul", rt_tensor_matmul(a, c));
    put("bmm", rt_tensor_matmul(a3, c));
    put("matvec", rt_tensor_matmul(a, v));
    put("transpose", rt_tensor_transpose(a, NIL, NIL));
    put("transpose3", rt_tensor_transpose(a3, int(0), int(2)));
    put("reshape", rt_tensor_reshape(a, arr(&[int(2), int(6)])));
    put("reshape_m1", rt_tensor_reshape(a, arr(&[int(-1), int(3)])));
    put("sum", rt_tensor_sum(a, NIL));
    put("sum1", rt_tensor_sum(a, dict(&[("dims", Value::int(1))])));
    put("sum_keep", rt_tensor_sum(a, dict(&[("dims", Value::from_raw(arr(&[int(0)]))), ("keepdim", Value::TRUE)])));
    put("sum_int", rt_tensor_sum(i, NIL));
    put("mean", rt_tensor_mean(a, NIL));
    put("mean0", rt_tensor_mean(a, dict(&[("dims", Value::int(0))])));
    put("mean_int", rt_tensor_mean(i, dict(&[("dtype", Value::text("float64"))])));
    put("relu", rt_nn_relu(a));
    put("sigmoid", rt_nn_sigmoid(a));
    put("softmax", rt_nn_softmax(a, NIL));
    put("softmax0", rt_nn_softmax(a, int(0)));
    put("dropout_eval", rt_nn_dropout(a, dict(&[("train", Value::FALSE)])));
    put("randn", rt_tensor_randn(arr(&[int(3), int(3)]), dict(&[("seed", Value::int(7))])));
    put("randn64", rt_tensor_randn(arr(&[int(2), int(2)]), dict(&[("seed", Value::int(11)), ("dtype", Value::text("float64"))])));

    // Gradients of a composite expression.
    let x = t(&inp["X"]);
    let w = t(&inp["W"]);
    assert!(ok(rt_tensor_requires_grad(x, Value::TRUE.raw())).as_bool().unwrap());
    ok(rt_tensor_requires_grad(w, Value::TRUE.raw()));
    let y = ok(rt_nn_relu(ok(rt_tensor_add(ok(rt_tensor_matmul(x, w)).raw(), f(1.0))).raw())).raw();
    let z = ok(rt_tensor_mul(ok(rt_nn_softmax(y, int(-1))).raw(), y)).raw();
    let xx = ok(rt_tensor_mean(ok(rt_tensor_mul(x, x)).raw(), NIL)).raw();
    let loss = ok(rt_tensor_sub(ok(rt_tensor_div(ok(rt_tensor_sum(z, NIL)).raw(), f(3.0))).raw(), xx)).raw();
    assert_eq!(ok(rt_tensor_grad(x)).raw(), NIL, "no grad before backward");
    ok(rt_tensor_backward(loss));
    put("loss", loss);
    put("gX", ok(rt_tensor_grad(x)).raw());
    put("gW", ok(rt_tensor_grad(w)).raw());

    // Layers: their parameters go to Python.
    let store = ok(rt_torch_store_new(NIL)).raw();
    put("linear", rt_nn_linear(store, text("fc"), a, int(5), NIL));
    inp.insert("LW".into(), values(ok(rt_torch_param_get(store, text("fc.weight"))).raw()));
    inp.insert("LB".into(), values(ok(rt_torch_param_get(store, text("fc.bias"))).raw()));
    let cx = t(&inp["CX"]);
    put("conv", rt_nn_conv2d(store, text("cv"), cx, int(4), int(3), dict(&[("padding", Value::int(1))])));
    put("conv_s2", rt_nn_conv2d(store, text("cv"), cx, int(4), int(3), dict(&[("stride", Value::int(2))])));
    inp.insert("CW".into(), values(ok(rt_torch_param_get(store, text("cv.weight"))).raw()));
    inp.insert("CB".into(), values(ok(rt_torch_param_get(store, text("cv.bias"))).raw()));
    put("bn_train", rt_nn_batch_norm(store, text("bn"), a, NIL));
    put("bn_rm", ok(rt_torch_param_get(store, text("bn.running_mean"))).raw());
    put("bn_rv", ok(rt_torch_param_get(store, text("bn.running_var"))).raw());
    put("bn_eval", rt_nn_batch_norm(store, text("bn"), b, dict(&[("train", Value::FALSE)])));
    put("ln", rt_nn_layer_norm(store, text("ln"), a3, NIL));
    put("ln2", rt_nn_layer_norm(store, text("ln2"), a3, dict(&[("dims", Value::int(2))])));
    let names: Vec<String> = ok(rt_torch_param_list(store)).items().map(|n| n.as_text().unwrap().to_string()).collect();
    assert_eq!(
        names,
        ["bn.bias", "bn.running_mean", "bn.running_var", "bn.weight", "cv.bias", "cv.weight", "fc.bias", "fc.weight", "ln.bias", "ln.weight", "ln2.bias", "ln2.weight"]
    );

    let want = python(ORACLE, &J::Object(inp));
    let want = want.as_object().unwrap();
    assert_eq!(got.len(), want.len(), "the same ops on both sides: {:?} vs {:?}", got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, w) in want {
        let g = got.get(k).unwrap_or_else(|| panic!("{k} not computed here"));
        let tol = if k.starts_with("randn") || k == "add_int" || k == "sum_int" { 0.0 } else { 2e-5 };
        assert_close(k, g, w, tol);
    }
    println!("{} results equal PyTorch's", want.len());
}

#[test]
fn data_round_trips_and_dtypes() {
    // Nested arrays: dtype from the data.
    let f = ok(rt_tensor_from_data(val(&json!([[1.5, 2.0], [3.0, -4.25]])).raw(), NIL)).raw();
    assert_eq!(ok(rt_tensor_dtype(f)).as_text(), Some("float32"));
    assert_eq!(values(f), json!([[1.5, 2.0], [3.0, -4.25]]));
    let b = ok(rt_tensor_from_data(val(&json!([true, false])).raw(), NIL)).raw();
    assert_eq!(ok(rt_tensor_dtype(b)).as_text(), Some("bool"));
    assert_eq!(values(b), json!([true, false]));
    let big = ok(rt_tensor_from_data(val(&json!([9007199254740993i64])).raw(), NIL)).raw();
    assert_eq!(values(big), json!([9007199254740993i64]), "int64 exactly, not through a double");
    let s = ok(rt_tensor_from_data(Value::float(2.5).raw(), NIL)).raw();
    assert_eq!(json(ok(rt_tensor_shape(s))), json!([]));
    assert_eq!(values(s), json!(2.5));
    let e = ok(rt_tensor_from_data(val(&json!([])).raw(), NIL)).raw();
    assert_eq!(json(ok(rt_tensor_shape(e))), json!([0]));
    // Bytes in and out, every dtype.
    for (dt, size) in [("float32", 4), ("float64", 8), ("int64", 8), ("int32", 4), ("int16", 2), ("int8", 1), ("uint8", 1), ("bool", 1), ("float16", 2), ("bfloat16", 2)] {
        let raw: Vec<u8> = (0..6 * size).map(|i| if dt == "bool" { (i % 2) as u8 } else { (i * 7 % 61) as u8 }).collect();
        let opts = dict(&[("shape", Value::from_raw(arr(&[int(2), int(3)]))), ("dtype", Value::text(dt))]);
        let t = ok(rt_tensor_from_data(Value::bytes(&raw).raw(), opts)).raw();
        assert_eq!(ok(rt_tensor_dtype(t)).as_text(), Some(dt));
        assert_eq!(ok(rt_tensor_bytes_get(t)).as_bytes().unwrap(), &raw[..], "{dt}");
    }
    // Bytes equal the nested form.
    let vals = numbers(9, 24);
    let bytes: Vec<u8> = vals.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
    let from_b = ok(rt_tensor_from_data(Value::bytes(&bytes).raw(), dict(&[("shape", Value::from_raw(arr(&[int(2), int(3), int(4)])))]))).raw();
    assert_eq!(values(from_b), nested(&[2, 3, 4], &vals));
    // Explicit dtype conversion, ones/zeros, device, to_device.
    let z = ok(rt_tensor_zeros(arr(&[int(2), int(2)]), dict(&[("dtype", Value::text("int32"))]))).raw();
    assert_eq!(values(z), json!([[0, 0], [0, 0]]));
    let o = ok(rt_tensor_ones(arr(&[int(3)]), dict(&[("dtype", Value::text("float64"))]))).raw();
    assert_eq!(values(o), json!([1.0, 1.0, 1.0]));
    assert_eq!(ok(rt_tensor_device(o)).as_text(), Some("cpu"));
    let o2 = ok(rt_tensor_to_device(o, text("cpu"))).raw();
    assert_eq!(values(o2), json!([1.0, 1.0, 1.0]));
    let conv = ok(rt_tensor_from_data(val(&json!([1, 2])).raw(), dict(&[("dtype", Value::text("float64"))]))).raw();
    assert_eq!(values(conv), json!([1.0, 2.0]));
    // Seeded randn is deterministic; without a seed it differs.
    let r1 = values(ok(rt_tensor_randn(arr(&[int(4)]), dict(&[("seed", Value::int(5))]))).raw());
    let r2 = values(ok(rt_tensor_randn(arr(&[int(4)]), dict(&[("seed", Value::int(5))]))).raw());
    assert_eq!(r1, r2);
    // Dropout: p=0 keeps, p=1 zeroes, training scales by 1/(1-p).
    let a = t(&data(3, &[100]));
    assert_eq!(values(ok(rt_nn_dropout(a, dict(&[("p", Value::float(0.0))]))).raw()), values(a));
    assert!(flat(&values(ok(rt_nn_dropout(a, dict(&[("p", Value::float(1.0))]))).raw())).iter().all(|x| *x == 0.0));
    let d = flat(&values(ok(rt_nn_dropout(a, dict(&[("p", Value::float(0.5))]))).raw()));
    let src = flat(&values(a));
    assert!(d.iter().zip(&src).all(|(x, s)| *x == 0.0 || (x - 2.0 * s).abs() < 1e-6));
    assert!(d.iter().filter(|x| **x == 0.0).count() > 20);
}
