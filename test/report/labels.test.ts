// The report's labels: known keys get their human label and unit, unknown ones a readable fallback,
// and values print in their unit's format (percentages with one decimal, never "−0.0").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  alarmLabel,
  flagLabel,
  formatMetric,
  formatSetting,
  formatValue,
  humanize,
  metricLabel,
} from '../../src/report/labels.js';
import { ALARM_KINDS } from '../../src/train/alarms.js';
import { FLAGS } from '../../src/train/flags.js';

const SNAKE = /[a-z0-9]_[a-z0-9]/i;

test('the keys the trainer logs have labels with units', () => {
  assert.equal(metricLabel('knn_top1'), { label: 'k-NN top-1 (%)', unit: 'fraction' });
  assert.equal(metricLabel('eval_test_rows'), { label: 'test images', unit: 'count' });
  assert.equal(metricLabel('eval_seconds'), { label: 'evaluation time (s)', unit: 'seconds' });
  assert.equal(metricLabel('usage_entropy_fraction').label, 'usage entropy (% of max)');
  for (const k of ['usage_used', 'usage_entropy', 'knn_k', 'eval_train_rows', 'prototypes', 'img_per_s'])
    assert.not.match(metricLabel(k).label, SNAKE, k);
});

test('unknown keys fall back to words, with a unit where the key ends in one', () => {
  assert.is(humanize('head_norm_ratio'), 'head norm ratio');
  assert.is(humanize('stepTimeMs'), 'step time (ms)');
  assert.is(humanize('data_wait_s'), 'data wait (s)');
  assert.is(humanize('tokens_per_s'), 'tokens/s');
  assert.is(humanize('KL'), 'KL');
  assert.equal(metricLabel('probe_top1'), { label: 'probe top1 (%)', unit: 'fraction' });
  assert.equal(metricLabel('load_ms'), { label: 'load (ms)', unit: 'ms' });
  assert.is(metricLabel('tail_images').unit, 'count');
});

test('every training flag and alarm kind reads without an underscore', () => {
  for (const k of Object.keys(FLAGS)) assert.not.match(flagLabel(k), SNAKE, k);
  for (const k of [...ALARM_KINDS, 'norm_growth']) assert.not.match(alarmLabel(k), SNAKE, k);
  assert.is(alarmLabel('norm_growth'), 'parameter norm growth');
  assert.is(alarmLabel('some_new_kind'), 'some new kind alarm');
});

test('percentages: one decimal, "−" for negatives, never "−0.0"', () => {
  assert.is(formatMetric('knn_top1', 0.83612), '83.6');
  assert.is(formatMetric('knn_top1', 1), '100.0');
  assert.is(formatValue(-0.0004, 'fraction'), '0.0');
  assert.is(formatValue(-0, 'fraction'), '0.0');
  assert.is(formatValue(-0.004, 'fraction'), '−0.4');
  assert.is(formatValue(-0.004, 'seconds'), '0.00');
  assert.is(formatValue(-0.2, 'count'), '0');
});

test('other units, missing and non-finite values', () => {
  assert.is(formatMetric('eval_test_rows', 256), '256');
  assert.is(formatMetric('eval_seconds', 3.14159), '3.1');
  assert.is(formatMetric('eval_seconds', 0.0421), '0.04');
  assert.is(formatMetric('loss', 4.158883), '4.159');
  assert.is(formatValue(-2.5e-7, 'number'), '−2.50e-7');
  assert.is(formatValue(0.000123456, 'number'), '0.0001235');
  assert.is(formatValue(undefined, 'number'), '—');
  assert.is(formatValue(NaN, 'fraction'), 'NaN');
  assert.is(formatValue(-Infinity, 'number'), '−∞');
});

test('settings as a reader writes them', () => {
  assert.is(formatSetting(true), 'on');
  assert.is(formatSetting(false), 'off');
  assert.is(formatSetting([0.4, 1]), '0.4, 1');
  assert.is(formatSetting('sinkhorn'), 'sinkhorn');
  assert.is(formatSetting(-0.05), '−0.05');
});

test.run();
