// Reverse-mode autograd over the graph of GradNodes hanging off op outputs. Gradients are computed
// with the same ops (so on the same device) with recording turned off.
import { isGradEnabled, keep, noGrad, Tensor, type GradNode } from './tensor.js';
import { ones } from './create.js';
import { add } from './ops/elementwise.js';
import { sameShape } from './shape.js';

/** Whether an op with these inputs should record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return isGradEnabled() && inputs.some((t) => t?.requiresGrad);
}

/** Attaches `backward` to `out` when any input requires grad; returns out. */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: (g: Tensor) => (Tensor | null)[]): Tensor {
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
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require grad (no parameter with requiresGrad reached it)');
  if (!grad && root.size !== 1) throw new Error(`backward: needs an explicit gradient for a non-scalar output of shape [${root.shape}]`);
  noGrad(() => {
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
        accumulateLeaf(t, g);
        continue;
      }
      const node = t.node;
      const inputGrads = node.backward(g);
      // A rule may hand back g itself or one tensor for two inputs; each is owned exactly once.
      const used = new Set<Tensor>();
      const owned = node.inputs.map((inp, j) => {
        let gi = inputGrads[j];
        if (!gi || !inp.requiresGrad) return null;
        if (!sameShape(gi.shape, inp.shape)) {
          throw new Error(`backward of ${node.op}: gradient shape [${gi.shape}] does not match input shape [${inp.shape}]`);
        }
        if (used.has(gi)) gi = add(gi, 0);
        used.add(gi);
        return gi;
      });
      for (const gi of new Set(inputGrads)) if (gi && !used.has(gi) && gi !== g) gi.dispose();
      if (!used.has(g)) g.dispose();
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
  });
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
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
