//! Where does int8 error enter? Prints each quantised op's cosine with the float model.
//! `cargo run --release -p host --example layer_error [-- MODEL]`
fn main() -> anyhow::Result<()> {
    let model = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "vargfacenet".into());
    let p = host::pipeline::prepare(&model, None, 1)?;
    let image = host::float_ref::synthetic_input(1);
    for (name, cos) in host::pipeline::layer_cosines(&p, &image)? {
        println!("{cos:.5}  {name}");
    }
    Ok(())
}
