// A loader worker: builds the batches it is asked for and transfers each buffer back.
import { parentPort, workerData } from 'node:worker_threads';
import { BatchMaker, type BatchPlan } from './batch.js';

const { plan, images, imagesOffset, imagesLength, labels } = workerData as {
  plan: BatchPlan;
  images: SharedArrayBuffer;
  imagesOffset: number;
  imagesLength: number;
  labels: Int32Array;
};
const maker = new BatchMaker(plan, new Uint8Array(images, imagesOffset, imagesLength), labels);

parentPort!.on('message', (m: { id: number; epoch: number; batch: number }) => {
  try {
    const { header, buffer } = maker.make(m.epoch, m.batch);
    parentPort!.postMessage({ id: m.id, header, buffer }, [buffer]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).stack ?? String(e) });
  }
});
