"""PyTorch reference for bench/ml-train-speed.ts: seconds per training epoch of the same compact
network (conv-BN-ReLU x6, 32-32-64-64-128-128 filters, stride-2 first layer, two 2x2 max-pools,
global average pool, dropout 0.2, one logit), batch 64, AdamW, on the machine's cores.

Random data of the data set's size (no decoding or augmentation): it times the network's
arithmetic only, which favours PyTorch slightly. Prints one line per epoch, then a JSON line.
Needs torch (Debian: apt-get install python3-torch; run with /usr/bin/python3)."""
import argparse, json, os, time
import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument('--images', type=int, default=7826)
p.add_argument('--size', type=int, default=48)
p.add_argument('--batch-size', type=int, default=64)
p.add_argument('--epochs', type=int, default=2)
p.add_argument('--threads', type=int, default=os.cpu_count())
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

def block(ci, co, stride=1):
    return [nn.Conv2d(ci, co, 3, stride, 1, bias=False), nn.BatchNorm2d(co, eps=1e-3, momentum=0.1), nn.ReLU()]

w = [32, 32, 64, 64, 128, 128]
net = nn.Sequential(*block(3, w[0], 2), *block(w[0], w[1]), nn.MaxPool2d(2, 2), *block(w[1], w[2]), *block(w[2], w[3]),
                    nn.MaxPool2d(2, 2), *block(w[3], w[4]), *block(w[4], w[5]), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                    nn.Dropout(0.2), nn.Linear(w[5], 1))
opt = torch.optim.AdamW(net.parameters(), lr=0.004, weight_decay=0.02)
loss_fn = nn.BCEWithLogitsLoss()
# 80% of the images train (the validation split), as in the trainer.
n_train = int(a.images * 0.8)
x = torch.rand(n_train, 3, a.size, a.size) * 2 - 1
y = (torch.rand(n_train, 1) < 0.5).float()
times = []
for epoch in range(a.epochs):
    t0 = time.perf_counter()
    net.train()
    perm = torch.randperm(n_train)
    for s in range(0, n_train, a.batch_size):
        idx = perm[s:s + a.batch_size]
        opt.zero_grad()
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    times.append(time.perf_counter() - t0)
    print(f'pytorch {torch.__version__} epoch {epoch + 1}: {times[-1]:.1f} s ({a.threads} threads)')
print(json.dumps({'secondsPerEpoch': sum(times) / len(times), 'torch': torch.__version__, 'threads': a.threads}))
