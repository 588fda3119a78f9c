// protodino report <run dirs…> --out report.html: the side-by-side comparison page of src/report.
import { parseArgs } from 'node:util';
import { BACKEND_OPTION, backendKind } from './args.js';

export async function report(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      out: { type: 'string', default: 'report.html' },
      eps: { type: 'string', default: '0.025,0.1' },
      eps_metric: { type: 'string', default: 'euclidean' },
      images: { type: 'string', default: '2000' },
      'no-gallery': { type: 'boolean', default: false },
      ...BACKEND_OPTION,
    },
  });
  if (positionals.length === 0)
    throw new Error('report: give one or more run directories (each with log.jsonl and/or checkpoint.safetensors)');
  const eps = values.eps.split(',').map(Number);
  if (!eps.every((e) => e > 0 && Number.isFinite(e)))
    throw new Error(`report: --eps must be positive numbers, got '${values.eps}'`);
  const epsMetric = values.eps_metric as 'euclidean' | 'cosine';
  if (epsMetric !== 'euclidean' && epsMetric !== 'cosine')
    throw new Error(`report: --eps_metric must be euclidean or cosine, got '${values.eps_metric}'`);
  const images = Number(values.images);
  if (!(Number.isInteger(images) && images > 0))
    throw new Error(`report: --images must be a positive integer, got '${values.images}'`);
  const kind = backendKind('report', values.backend);
  const { createBackend } = await import('../backend/index.js');
  const { generateReport } = await import('../report/index.js');
  const { alarmLabel } = await import('../report/labels.js');
  const be = await createBackend({ kind });
  try {
    const r = await generateReport(positionals, {
      out: values.out,
      eps,
      epsMetric,
      galleryImages: images,
      noGallery: values['no-gallery'],
      backend: be,
    });
    console.log(`eps metric: ${epsMetric}`);
    console.log(`wrote ${r.html}${r.svgs.length ? ` and ${r.svgs.join(', ')}` : ''}`);
    for (const run of r.runs) {
      const raised = run.alarms.filter((a) => !a.cleared);
      if (raised.length)
        console.log(
          `${run.name}: alarm${raised.length === 1 ? '' : 's'} ${raised.map((a) => `${alarmLabel(a.kind)} (step ${a.step})`).join(', ')}`,
        );
    }
  } finally {
    be.destroy();
  }
}
