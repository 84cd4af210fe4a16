use burn::prelude::*;
use supernet::data::Batcher;
use supernet::train::{Checkpoint, recalibrate_bn};
use supernet::{ArchConfig, BnMode};
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let ck = Checkpoint::open(std::path::Path::new(&p)).unwrap();
    let dev = Device::flex();
    let m = ck.load_model(&dev).unwrap();
    let data = supernet::data::load_dir(&ck.state.data_dir, 1).unwrap();
    let mut b = Batcher::new(ck.state.mean.clone(), ck.state.std.clone());
    for arch in [
        ArchConfig::max(&ck.state.space),
        ArchConfig::min(&ck.state.space),
    ] {
        recalibrate_bn(&m, &arch, &data.train, &mut b, 64, &dev);
        let idx: Vec<usize> = (0..8).collect();
        let (_, labels) = b.fill::<rand_chacha::ChaCha8Rng>(
            &data.test,
            &idx,
            supernet::data::Augment::none(),
            None,
        );
        let labels = labels.to_vec();
        let r = arch.resolution;
        let x = b.resized(8, 1, 12, 12, r).to_vec();
        let x = Tensor::<1>::from_data(TensorData::new(x, [8 * r * r]), &dev).reshape([8, 1, r, r]);
        let y = m.forward(x, &arch, BnMode::Eval);
        println!("{} labels {labels:?}", arch.short_id());
        println!(
            "logits {:?}",
            y.clone()
                .slice(s![0..2, ..])
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        );
        let pred = y.argmax(1).reshape([8]);
        println!(
            "pred {:?}",
            pred.into_data().convert::<i64>().try_to_vec::<i64>()
        );
    }
}
