// Reverse-mode autograd over the graph of GradNodes hanging off op outputs. Gradients are computed
// with the same ops (so on the same device) with recording turned off. Every op module imports
// record() from here, so this module imports no op: the one it needs, add, is handed in.
import { isGradEnabled, keep, noGrad, tidy, Tensor, type GradNode, type PendingGradient } from './tensor.js';
import { ones } from './create.js';
import { sameShape } from './shape.js';

/** Sums gradients of one shape; `+ 0` copies one. */
export type GradientAdd = (a: Tensor, b: Tensor | number) => Tensor;

let gradientAdd: GradientAdd | null = null;

/** Called once by the elementwise ops, where add lives. */
export function setGradientAdd(add: GradientAdd): void {
  gradientAdd = add;
}

/** Whether an op with these inputs should record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return isGradEnabled() && inputs.some((t) => t?.requiresGrad);
}

/** Attaches `backward` to `out` when any input requires grad; returns out. */
export function record(
  out: Tensor,
  op: string,
  inputs: Tensor[],
  backward: (g: Tensor, pending: PendingGradient) => (Tensor | null)[],
): Tensor {
  if (!needsGrad(...inputs)) return out;
  const node: GradNode = { op, inputs, backward };
  out.node = node;
  out.requiresGrad = true;
  return out;
}

/** Marks a tensor as a trainable leaf. */
export function param(t: Tensor, name?: string): Tensor {
  t.requiresGrad = true;
  t.node = null;
  if (name) t.name = name;
  return keep(t);
}

/**
 * Back-propagates from `root` (a scalar unless `grad` is given) and accumulates into the `.grad`
 * of every leaf that requires grad. Intermediate gradients are freed as soon as they are used.
 *
 * Each backward rule runs inside its own tidy() scope: whatever tensors it creates are freed when
 * it returns, except the gradients it returns, so rules never dispose their temporaries. Tensors
 * the rule only reads (its output gradient, the forward's saved tensors) were created outside the
 * scope and are untouched by it. The whole pass runs in one more scope, from which only the leaves'
 * gradients are kept: a pass that throws half-way frees the gradients it was carrying.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad)
    throw new Error('backward: the tensor does not require grad (no parameter with requiresGrad reached it)');
  if (!grad && root.size !== 1)
    throw new Error(`backward: needs an explicit gradient for a non-scalar output of shape [${root.shape}]`);
  const add = gradientAdd;
  if (!add)
    throw new Error('backward: no gradient add registered (import the elementwise ops, e.g. via src/tensor/index.js)');
  noGrad(() =>
    tidy(() => {
      // Topological order by iterative DFS (deep networks would overflow recursion).
      const order: Tensor[] = [];
      const seen = new Set<Tensor>();
      const stack: [Tensor, number][] = [[root, 0]];
      seen.add(root);
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        const [t, i] = top;
        const inputs = t.node ? t.node.inputs : [];
        if (i < inputs.length) {
          top[1]++;
          const c = inputs[i];
          if (c.requiresGrad && !seen.has(c)) {
            seen.add(c);
            stack.push([c, 0]);
          }
        } else {
          stack.pop();
          order.push(t);
        }
      }
      const grads = new Map<Tensor, Tensor>();
      grads.set(root, grad ? add(grad, 0) : ones(root.shape, root.backend));
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k];
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        if (!t.node) {
          accumulateLeaf(t, g, add);
          continue;
        }
        const node = t.node;
        // A rule may take over the sum so far of an input's gradient and return it with its own
        // contribution added (layerNorm's kernel adds it in its last pass): the same sum, one pass fewer.
        const taken: Tensor[] = [];
        const pending: PendingGradient = (j) => {
          const inp = node.inputs[j];
          const prev = inp ? grads.get(inp) : undefined;
          if (!prev) return null;
          grads.delete(inp);
          taken.push(prev);
          return prev;
        };
        const inputGrads = tidy(() => node.backward(g, pending));
        // A rule may hand back g itself or one tensor for two inputs; each is owned exactly once.
        const used = new Set<Tensor>();
        const owned = node.inputs.map((inp, j) => {
          let gi = inputGrads[j];
          if (!gi || !inp.requiresGrad) return null;
          if (!sameShape(gi.shape, inp.shape)) {
            throw new Error(
              `backward of ${node.op}: gradient shape [${gi.shape}] does not match input shape [${inp.shape}]`,
            );
          }
          if (used.has(gi)) gi = add(gi, 0);
          used.add(gi);
          return gi;
        });
        for (const gi of new Set(inputGrads)) if (gi && !used.has(gi) && gi !== g) gi.dispose();
        if (!used.has(g)) g.dispose();
        for (const prev of taken) if (!used.has(prev)) prev.dispose();
        node.inputs.forEach((inp, j) => {
          const gi = owned[j];
          if (!gi) return;
          const prev = grads.get(inp);
          if (prev) {
            grads.set(inp, add(prev, gi));
            prev.dispose();
            gi.dispose();
          } else {
            grads.set(inp, gi);
          }
        });
      }
    }),
  );
}

function accumulateLeaf(t: Tensor, g: Tensor, add: GradientAdd): void {
  if (t.grad) {
    const sum = add(t.grad, g);
    t.grad.dispose();
    g.dispose();
    t.grad = keep(sum);
  } else {
    t.grad = keep(g);
  }
}

/** Frees the gradients of the given leaves (before the next accumulation). */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    if (p.grad) {
      p.grad.dispose();
      p.grad = null;
    }
  }
}
