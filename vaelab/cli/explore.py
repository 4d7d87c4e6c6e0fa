"""``vaelab explore DATASET``: open the live explorer on a trained (or shipped) model, nothing else.

    vaelab explore mnist                       # a window where there is a display, else the web page
    vaelab explore mnist --web --port 8060     # the page, served on 127.0.0.1:8060
    vaelab explore fashion_mnist --window      # a window with the class-morph sliders
    vaelab explore cifar10 --model cifar10_ld_64_conv_3_id_256_e_20_dmol_1 --no-scatter

Without ``--web`` or ``--window`` it opens a window when there is a display and otherwise serves the web
explorer, saying so in one line. The scatter (2-D and 3-D latents) and Fashion-MNIST's morph read the test
set; ``--no-scatter`` explores the decoder alone, without any data.
"""

from __future__ import annotations

from vaelab.api.trained import check_requested_latent_dim, load_trained
from vaelab.cli import generate
from vaelab.cli import options as cli
from vaelab.cli.morph import DEFAULT_MORPH_PAIRS, class_index, morph_control


def explore_parser(exp, params_module):
    p = cli.parser(__doc__, exp.params_cls, params_module)
    g = p.add_argument_group("exploring")
    cli.add_model_option(g, exp.params_cls().model_prefix())
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--web", dest="mode", action="store_const", const="web",
                      help="serve the explorer to a browser on --host:--port (docs/explore.md)")
    mode.add_argument("--window", dest="mode", action="store_const", const="window",
                      help="open it in a window (needs a display)")
    cli.add_web_options(g)
    g.add_argument("--no-scatter", action="store_true",
                   help="read no data: no test-set scatter and no class morph, the decoder and its sliders only")
    return p


def explore_mode(asked: str | None) -> str:
    """``window`` or ``web``: what was asked, else a window when there is a display and the web page when not."""
    from vaelab.explore.explorer import has_display, require_display

    if asked == "window":
        require_display()
        return "window"
    if asked is None and has_display():
        return "window"
    if asked is None:
        print("note: no display here; serving the web explorer instead (--window insists on a window)", flush=True)
    return "web"


def explore_command(exp, params_module, argv) -> int:
    from vaelab.explore import latent
    from vaelab.models.architectures.topdown import set_temperature

    args = explore_parser(exp, params_module).parse_args(argv)
    args.explore = explore_mode(args.mode)
    generate.check_web_port(args)
    params = cli.params_from_args(exp.params_cls, params_module, args)
    trained = load_trained(exp, params, args.models_dir, args.model, shipped=True)
    check_requested_latent_dim(trained, args)
    trained.params = trained.params.with_generation_choices(args)
    trained.hierarchical = set_temperature(trained.decoder, trained.params.temperature)
    morph = None
    if exp.name == "fashion_mnist" and not args.no_scatter:
        data, z = trained.test_codes(args.data_dir, args.limit)
        means = latent.class_means(z, data.y_test, len(data.class_names))
        a, b = (class_index(name, data.class_names) for name in DEFAULT_MORPH_PAIRS[0])
        morph = morph_control(means, data.class_names, "morph", params.alpha_max, (a, b))
    generate.explore(trained, args, morph)
    return 0
