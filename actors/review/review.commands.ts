import { Type } from 'typebox';
import type { CommandOf } from '@converge-es/converge';
import { EmptyBody, Id } from '../shared.schemas.js';

/** Body of `post`: a rating of 1–5 and a text of at most 2,000 characters (may be empty). */
export const PostReviewBody = Type.Object(
  {
    orderId: Id,
    customerId: Id,
    rating: Type.Integer({ minimum: 1, maximum: 5 }),
    text: Type.String({ maxLength: 2000 }),
  },
  { additionalProperties: false },
);

/** The review's HTTP surface: URL segment → command type and body schema. */
export const reviewCommands = {
  post: { type: 'PostReview', schema: PostReviewBody },
  delete: { type: 'DeleteReview', schema: EmptyBody },
} as const;

/** A review command as `decide` receives it, its `data` already validated against its schema. */
export type ReviewCommand = CommandOf<typeof reviewCommands>;
