import * as tf from '@tensorflow/tfjs';
import { ARCHITECTURES, buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend.js';

describe('architectures', () => {
  beforeAll(async () => { await initBackend(); });

  test.each(ARCHITECTURES.map((a) => [a]))('%s builds, outputs one logit and takes a training step on wasm', (arch) => {
    const size = arch === 'xception' ? 40 : 32;
    const model = buildModel(arch, size);
    expect(model.outputs[0].shape).toEqual([null, 1]);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const before = tf.memory().numTensors;
    const loss = tf.tidy(() => {
      const x = tf.randomUniform([2, size, size, 3], -1, 1);
      const y = tf.tensor2d([[0], [1]]);
      const { value, grads } = tf.variableGrads(() => tf.losses.sigmoidCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      for (const v of vars) expect(grads[v.name].shape).toEqual(v.shape);
      const finite = Object.values(grads).every((g) => tf.all(tf.isFinite(g)).dataSync()[0] === 1);
      expect(finite).toBe(true);
      return value.dataSync()[0];
    });
    expect(Number.isFinite(loss)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  test('unknown architecture names are refused', () => {
    expect(() => buildModel('resnet' as never, 32)).toThrow(/unknown architecture/);
  });
});
