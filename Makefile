# Every target creates .venv on first use, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# make installs against the lock file (pip -c): the exact versions the tests and results were
# produced with. `make <target> LOCK=` installs unpinned instead: the newest versions within
# setup.cfg's ranges (a separate stamp, so switching either way reinstalls).
LOCK_FILE := requirements-lock.txt
LOCK ?= $(LOCK_FILE)
STAMP := $(VENV)/.installed-$(if $(LOCK),locked,unpinned)

DATASET ?= mnist
PRESET ?= mnist_quick
# Replicate training seeds per lambda for demo and methods, e.g. SEEDS=0,1,2 (empty: the preset's).
SEEDS ?=
SEEDS_FLAG := $(if $(SEEDS),--seeds=$(SEEDS))
# make demo's working folder (git-ignored): the job runs there, never into the committed
# reference results/$(PRESET)_$(DATASET), which it is then compared with.
RESULTS ?= runs/$(PRESET)_$(DATASET)
REFERENCE ?= results/$(PRESET)_$(DATASET)
# The cohort whose results README.md shows (committed with its weights, without model files).
README_COHORT := mnist_quick_mnist

.PHONY: install lock demo converged fashion_resnet fashion_small conjecture methods figures test \
	docs lint bench clean

$(STAMP): setup.cfg pyproject.toml $(LOCK)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed*
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' $(if $(LOCK),-c $(LOCK),--upgrade --upgrade-strategy eager)
	touch $(STAMP)

install: $(STAMP)

# Rewrites the lock file from this venv (keeping its header); commit it with the results it made.
lock: $(STAMP)
	{ grep '^#' $(LOCK_FILE); $(PY) -m pip freeze --exclude-editable; } > $(LOCK_FILE).tmp
	mv $(LOCK_FILE).tmp $(LOCK_FILE)

# The main job: train and evaluate the lambda sweep into $(RESULTS) (resuming what it holds),
# draw every figure and the claims table there, and compare it with the committed reference.
demo: $(STAMP)
	$(PY) -m experiments.get_data --dataset=$(DATASET)
	$(PY) -m experiments.cohort --preset=$(PRESET) --train.data.dataset=$(DATASET) --results_dir=$(RESULTS) \
		$(SEEDS_FLAG)
	$(PY) -m experiments.figures --results_dir=$(RESULTS) --out_dir=$(RESULTS)/figures
	$(PY) -m experiments.claims --results_dir=$(RESULTS) > /dev/null
	$(if $(wildcard $(REFERENCE)/cohort.json),$(PY) -m experiments.reproduce \
		--results_dir=$(RESULTS) --reference=$(REFERENCE))

# The paper's MNIST cohort trained to convergence (16 models; about 4 hours on 2 CPU cores here).
converged: $(STAMP)
	$(PY) -m experiments.get_data --dataset=$(DATASET)
	$(PY) -m experiments.cohort --preset=mnist_converged --train.data.dataset=$(DATASET)
	$(PY) -m experiments.figures --results_dir=results/mnist_converged_$(DATASET) \
		--out_dir=figures/mnist_converged_$(DATASET)
	$(PY) -m experiments.masking --results_dir=results/mnist_converged_$(DATASET)
	$(PY) -m experiments.claims --results_dir=results/mnist_converged_$(DATASET)

# The paper's ImageNet protocol on Fashion-MNIST (apt-get install dataset-fashion-mnist): a
# pretrained network, then one fine-tune per lambda, two replicas under MirroredStrategy on the
# CPU's two logical devices (or the machine's GPUs). fashion_resnet is the deep batch-normalised
# network, fashion_small the shallow one of the linearity test; `make conjecture` reads both.
fashion_resnet fashion_small: $(STAMP)
	$(PY) -m experiments.cohort --preset=$@_pretrain
	$(PY) -m experiments.cohort --preset=$@ --strategy=mirrored --cpu_replicas=2
	$(PY) -m experiments.figures --results_dir=results/$@_fashion_mnist \
		--out_dir=figures/$@_fashion_mnist
	$(PY) -m experiments.masking --results_dir=results/$@_fashion_mnist
	$(PY) -m experiments.claims --results_dir=results/$@_fashion_mnist

conjecture: $(STAMP)
	$(PY) -m experiments.conjecture --results_dirs=results/fashion_resnet_fashion_mnist,results/fashion_small_fashion_mnist \
		--names=ResNet-20,small_net --out_dir=results/fashion_conjecture \
		--figure_dirs=figures/fashion_resnet_fashion_mnist,figures/fashion_small_fashion_mnist

# Beyond the paper: the other methods' quick cohorts, then the comparison with the committed
# L2 double-backprop cohort.
METHOD_PRESETS := mnist_quick_alignment mnist_quick_pgd mnist_quick_linf
methods: $(STAMP)
	$(PY) -m experiments.get_data --dataset=$(DATASET)
	for p in $(METHOD_PRESETS); do \
		$(PY) -m experiments.cohort --preset=$$p --train.data.dataset=$(DATASET) $(SEEDS_FLAG) || exit 1; done
	$(PY) -m experiments.fig_methods --dataset=$(DATASET)

figures: $(STAMP)
	$(PY) -m experiments.figures --results_dir=results/$(README_COHORT) --out_dir=figures/$(README_COHORT)
	$(PY) -m experiments.claims --results_dir=results/$(README_COHORT)

test: $(STAMP)
	$(PY) -m pytest

# The documentation site (site/, git-ignored) from docs/ and the docstrings; --strict makes a
# broken reference, a malformed docstring or a missing page an error, as in CI.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --quiet

# ruff over the repository, then mypy over the library (setup.cfg's [mypy]: the public API's
# annotations and every annotated function are checked; TensorFlow and Keras are untyped).
lint: $(STAMP)
	$(PY) -m ruff check robust_saliency experiments benchmarks tests docs
	$(PY) -m mypy

# Each benchmark times its baseline in the same run and appends to benchmarks/RESULTS.md.
# (benchmarks.imagenet_memory, ~5 min for one 1000-class batch at 224x224, runs on its own.)
bench: $(STAMP)
	$(PY) -m benchmarks.train_step
	$(PY) -m benchmarks.profile_train_step
	$(PY) -m benchmarks.train_epoch
	$(PY) -m benchmarks.lin_robustness
	$(PY) -m benchmarks.metrics
	$(PY) -m benchmarks.attacks
	$(PY) -m benchmarks.attack_tracing
	$(PY) -m benchmarks.attack_tightness \
		--run_dirs=results/mnist_quick_mnist/m00_lam10,results/mnist_quick_mnist/m03_lam20000
	$(PY) -m benchmarks.cohort

clean:
	rm -rf $(VENV) build site *.egg-info .mypy_cache
