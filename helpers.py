"""What the notebook, the tests and the grader share: toy data, gradient checks, data sets, plots.

The one import point of the kit's helpers: `import helpers` or `from helpers import rel_error`.
Each name lives in a module of helpers_lib/, by topic (see helpers_lib/__init__.py); every
import below is a re-export (pyproject.toml exempts this file from the unused-import rule).

Shapes: N examples, D input features, H hidden units, C classes. Every function returns values;
the caller decides what to print or show. Plots return a matplotlib `Figure` that is not
registered with pyplot, so a notebook shows it once and a script can `savefig` it.
"""
from helpers_lib.data import (
    CIFAR10_CLASSES,
    CIFAR10_IMAGE_SHAPE,
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    DIGITS_IMAGE_SHAPE,
    TOY_REFERENCE_PATH,
    find_cifar10_folder,
    get_toy_data,
    huge_scores_case,
    load_cifar10,
    load_digits_data,
    load_toy_reference,
)
from helpers_lib.deepnets import (
    ACTIVATIONS,
    activation_and_derivative,
    clip_by_norm,
    deep_net_scores,
    init_deep_net,
    layer_gradient_norms,
    plot_activations,
    plot_layer_gradient_norms,
    train_deep_net,
)
from helpers_lib.errors import describe_error
from helpers_lib.gradcheck import (
    MissingGradients,
    autograd_loss_and_grads,
    WrongGradientShape,
    grad_check,
    largest_differences,
    numeric_gradient,
    rel_error,
    require_gradients,
)
from helpers_lib.notebook import (
    NUM_THREADS,
    THREADS_ENV,
    CheckResult,
    FollowedModule,
    ModuleNotLoaded,
    WrongPrediction,
    advance_on_call,
    check,
    checked_predict,
    final_loss,
    follow_module,
    loss_func_with_progress,
    progress_bar,
    report_errors,
    seeded,
    to_device,
    use_threads,
)
from helpers_lib.plots import (
    SMALLEST_RATE_SHOWN,
    plot_acc_curves,
    plot_loss_and_learning_rate,
    plot_loss_curves,
    plot_search_heatmap,
    plot_stats,
    show_net_weights,
)
from helpers_lib.training import accuracy, learning_rate_schedule
