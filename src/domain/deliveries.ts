// Owns the webhook entities (messages, deliveries, attempts, endpoint health) and the delivery rules
// every adapter and view applies alike. Must never do I/O or import anything outside domain/.

import type { Period } from './periods.js';

export const MESSAGE_TYPES = ['aggregation.completed', 'aggregation.updated'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** A webhook message written in the same transaction as the aggregation revision it announces. */
export interface OutboxMessage {
  id: string;
  aggregationId: string;
  revision: number;
  type: MessageType;
  customerId: string;
  period: Period;
  createdAt: number;
  /** The exact body bytes (UTF-8 JSON text) every attempt will sign and send. */
  body: string;
}

/** One delivery of a message to one endpoint, created with the message. */
export interface NewDelivery {
  id: string;
  endpointId: string;
  deadlineAt: number;
}

export type DeliveryStatus = 'pending' | 'sending' | 'succeeded' | 'retry_scheduled' | 'failed' | 'cancelled' | 'held';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  'pending',
  'sending',
  'succeeded',
  'retry_scheduled',
  'failed',
  'cancelled',
  'held',
];

export interface DeliveryRecord {
  id: string;
  messageId: string;
  endpointId: string;
  aggregationId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
  createdAt: number;
  updatedAt: number;
  deadlineAt: number;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: number | null;
  dryRun: boolean;
}

export interface AttemptRecord {
  deliveryId: string;
  attempt: number;
  startedAt: number;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  error: string | null;
  responseBody: string | null;
  webhookTimestamp: number;
  dryRun: boolean;
  manual: boolean;
}

/** A claimed delivery with what is needed to send it. */
export interface ClaimedDelivery extends DeliveryRecord {
  message: OutboxMessage;
  /** The state before this claim; a manual attempt that fails returns the delivery to it. */
  previousStatus: DeliveryStatus;
}

export interface EndpointState {
  id: string;
  url: string;
  disabledAt: number | null;
  disabledReason: string | null;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  failureStreak: number;
}

/** What one attempt changes: the delivery's next state and the endpoint's health. */
export interface AttemptOutcome {
  status: DeliveryStatus;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
  /** 'success' resets the failure streak; 'failure' extends it; 'gone' disables the endpoint (410). */
  endpoint: 'success' | 'failure' | 'gone';
}

/** Statuses of a delivery not finished yet (neither succeeded, failed nor cancelled): the queue metrics watch. */
export const UNDELIVERED_STATUSES = ['pending', 'sending', 'retry_scheduled', 'held'] as const satisfies readonly DeliveryStatus[];

/** A receiver's answer that delivers: any 2xx. */
export function isSuccessStatus(statusCode: number | null): boolean {
  return statusCode !== null && statusCode >= 200 && statusCode < 300;
}

/** Why an endpoint that answered 410 Gone at `at` was disabled, as its health shows it. */
export function goneReason(at: number): string {
  return `the receiver answered 410 Gone on ${new Date(at).toISOString()}`;
}
